//! The rule step of the packet path (FORWARD): the chain of the side the
//! packet came from decides, a rule's per-source limit may turn its accept
//! into a drop, and a traced packet's record gets the rules it met.

use core::net::IpAddr;

use super::trace::TraceRecord;
use crate::chain::{Chain, Decider};
use crate::conntrack::state::CtState;
use crate::conntrack::table::Conntrack;
use crate::conntrack::track::{FlowRef, Tracked};
use crate::conntrack::tuple::Tuple;
use crate::helpers::ftp::FtpState;
use crate::limits::{Limit, SourceLimiter};
use crate::packet::Packet;
use crate::rules::{Action, MatchContext};
use crate::sets::Sets;
use crate::side::Side;
use crate::stats::DropReason;
use crate::time::Instant;

/// What the rules decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RuleStep {
    /// The action taken: the decider's, or `Drop` over a source limit.
    pub(super) action: Action,
    /// The rule or policy that decided.
    pub(super) decider: Decider,
    /// Why the packet is dropped if `action` is `Drop`: over a source
    /// limit, a rule's drop, or the side's policy.
    pub(super) drop_reason: DropReason,
    /// Whether the packet is to be logged (before the log's rate limit):
    /// the decider logs, or the packet is INVALID, `log_invalid` is on and
    /// it is not accepted.
    pub(super) wants_log: bool,
}

/// What the rule step works on: the chain of the packet's side and what its
/// per-source limits use, borrowed from the firewall for one packet.
pub(super) struct Rules<'a> {
    /// The chain of the side the packet came from.
    pub(super) chain: &'a mut Chain,
    /// The sets the rules match against (and overload sets are added to).
    pub(super) sets: &'a mut Sets,
    /// The per-source rate limits' buckets.
    pub(super) limiter: &'a mut SourceLimiter,
    /// The table, for per-source flow counts.
    pub(super) conntrack: &'a Conntrack<FtpState>,
    /// Whether INVALID packets not accepted are logged.
    pub(super) log_invalid: bool,
}

impl Rules<'_> {
    /// The rules' decision on `seen` (the packet as the rules see it:
    /// `translated` when that is its NAT view) coming from `side`, whose
    /// conntrack verdict is `tracked`. A new flow its rule accepts is
    /// checked against the rule's per-source limit (which may add the
    /// source to an overload set). Tracing (`TRACE`), `rec` gets the rules
    /// evaluated, the decider, the action and the translated view. Never
    /// allocates.
    pub(super) fn decide<const TRACE: bool>(
        self,
        seen: &Packet,
        translated: bool,
        side: Side,
        tracked: &Tracked,
        now: Instant,
        rec: &mut TraceRecord,
    ) -> RuleStep {
        let ctx = MatchContext {
            sets: self.sets,
            now,
        };
        let (mut action, decider) = self.chain.evaluate(seen, tracked.state, &ctx);
        let mut over_limit = false;
        if let (Action::Accept, Decider::Rule(i), FlowRef::Pending(_), CtState::New) =
            (action, decider, &tracked.flow, tracked.state)
        {
            if let Some(limit) = self.chain.rules.get(i).and_then(|r| r.limit.as_ref()) {
                let rule = ((side.index() as u32) << 24) | (i as u32 & 0xff_ffff);
                over_limit = over_source_limit(
                    limit,
                    rule,
                    seen.ip.src,
                    self.conntrack,
                    self.limiter,
                    self.sets,
                    now,
                );
                if over_limit {
                    action = Action::Drop;
                }
            }
        }
        if TRACE {
            let ctx = MatchContext {
                sets: self.sets,
                now,
            };
            let (_, _, evaluated) = self.chain.trace(seen, tracked.state, &ctx, &mut rec.misses);
            rec.evaluated = evaluated;
            rec.decider = Some(decider);
            rec.action = Some(action);
            rec.seen = translated.then(|| Tuple::of_packet(seen));
        }
        let wants_log = self.chain.wants_log(decider)
            || (self.log_invalid && tracked.invalid.is_some() && action != Action::Accept);
        let drop_reason = match decider {
            _ if over_limit => DropReason::SourceLimit,
            Decider::Rule(_) => DropReason::RuleDrop,
            Decider::Policy if side == Side::Lan => DropReason::PolicyOutbound,
            Decider::Policy => DropReason::PolicyInbound,
        };
        RuleStep {
            action,
            decider,
            drop_reason,
            wants_log,
        }
    }
}

/// Whether a new flow from `src` that rule `rule` (chain and number)
/// accepts is over the rule's `limit`: its source has
/// `per_source_states` live flows, or its token bucket is empty. Over it,
/// the source is added to the overload set if the limit names one.
/// Never allocates.
fn over_source_limit(
    limit: &Limit,
    rule: u32,
    src: IpAddr,
    conntrack: &Conntrack<FtpState>,
    limiter: &mut SourceLimiter,
    sets: &mut Sets,
    now: Instant,
) -> bool {
    let too_many = limit
        .per_source_states
        .is_some_and(|max| conntrack.sources.count(src) >= max);
    // The states limit first: a source at it spends no token.
    let over = too_many
        || limit
            .per_source_rate
            .is_some_and(|rate| !limiter.take(rule, src, rate, now));
    if over {
        if let Some(set) = &limit.overload {
            let timeout = limit
                .overload_timeout
                .map(|t| core::time::Duration::from_secs(u64::from(t)));
            match sets.add_host(set.index, src, timeout, now) {
                Ok(()) => limiter.stats.overloaded += 1,
                Err(_) => limiter.stats.overload_failed += 1,
            }
        }
    }
    over
}
