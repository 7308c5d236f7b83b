//! Chains: the ordered rules of one direction, first match wins, with a
//! default policy and packet/byte counters per rule.

use serde::Serialize;

use crate::conntrack::state::CtState;
use crate::packet::Packet;
use crate::rules::{Action, MatchContext, Rule, RuleField};

/// Packet and byte counters of one rule or policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
}

impl Counter {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// The rules of one direction and their counters.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// The default policy when no rule matches (accept or drop).
    pub policy: Action,
    /// Log packets that fall through to the policy.
    pub log_policy: bool,
    /// One counter per rule.
    pub counters: Vec<Counter>,
    /// Packets that fell through to the policy.
    pub policy_counter: Counter,
}

/// Which rule decided, for counters and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decider {
    /// Rule number (0-based) in the chain.
    Rule(usize),
    /// The chain's default policy.
    Policy,
}

impl Chain {
    /// A chain with zeroed counters.
    pub fn new(rules: Vec<Rule>, policy: Action, log_policy: bool) -> Chain {
        let counters = vec![Counter::default(); rules.len()];
        Chain {
            rules,
            policy,
            log_policy,
            counters,
            policy_counter: Counter::default(),
        }
    }

    /// Take over the counters of `old` for rules with the same name (and the
    /// policy counter); returns how many rule counters were carried over.
    pub fn inherit_counters(&mut self, old: &Chain) -> usize {
        let mut carried = 0;
        for (i, rule) in self.rules.iter().enumerate() {
            let Some(name) = rule.name.as_deref() else {
                continue;
            };
            if let Some(j) = old
                .rules
                .iter()
                .position(|r| r.name.as_deref() == Some(name))
            {
                self.counters[i] = old.counters[j];
                carried += 1;
            }
        }
        self.policy_counter = old.policy_counter;
        carried
    }

    /// Whether the decider of a packet asked for logging.
    pub fn wants_log(&self, decider: Decider) -> bool {
        match decider {
            Decider::Rule(i) => self.rules.get(i).is_some_and(|r| r.log),
            Decider::Policy => self.log_policy,
        }
    }

    /// The name of the decider, for logs: the rule's name, `#N`, or `policy`.
    pub fn decider_name(&self, decider: Decider) -> String {
        match decider {
            Decider::Rule(i) => self
                .rules
                .get(i)
                .and_then(|r| r.name.clone())
                .unwrap_or_else(|| format!("#{}", i + 1)),
            Decider::Policy => "policy".to_string(),
        }
    }

    /// First matching rule's action (or the policy), without counting.
    pub fn peek(&self, pkt: &Packet<'_>, state: CtState, ctx: &MatchContext<'_>) -> Action {
        self.rules
            .iter()
            .find(|r| r.matches(pkt, state, ctx))
            .map_or(self.policy, |r| r.action)
    }

    /// [`Chain::peek`] rule by rule, for explaining and tracing: the
    /// field each rule before the decider failed is written to `misses`
    /// (as many as fit; the rest are evaluated all the same); returns the
    /// action, the decider, and how many rules were evaluated (the decider
    /// included). Counts nothing and allocates nothing.
    pub fn trace(
        &self,
        pkt: &Packet<'_>,
        state: CtState,
        ctx: &MatchContext<'_>,
        misses: &mut [RuleField],
    ) -> (Action, Decider, usize) {
        for (i, rule) in self.rules.iter().enumerate() {
            match rule.mismatch(pkt, state, ctx) {
                None => return (rule.action, Decider::Rule(i), i + 1),
                Some(field) => {
                    if let Some(slot) = misses.get_mut(i) {
                        *slot = field;
                    }
                }
            }
        }
        (self.policy, Decider::Policy, self.rules.len())
    }

    /// First matching rule's action (or the policy), counting the packet.
    pub fn evaluate(
        &mut self,
        pkt: &Packet<'_>,
        state: CtState,
        ctx: &MatchContext<'_>,
    ) -> (Action, Decider) {
        let len = pkt.ip.total_len;
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.matches(pkt, state, ctx) {
                self.counters[i].add(len);
                return (rule.action, Decider::Rule(i));
            }
        }
        self.policy_counter.add(len);
        (self.policy, Decider::Policy)
    }
}
