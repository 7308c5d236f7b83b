//! The firewall's address translation steps (see [`crate::nat`]): the plan
//! of a packet before the rules, the source NAT of a new flow they
//! accepted, and the rewrite of a forwarded packet; functions of the NAT
//! state and the table, which [`super::Firewall`] calls.

use crate::conntrack::flow::Flow;
use crate::conntrack::table::{ConfirmError, Conntrack, HelperState};
use crate::conntrack::track::{FlowRef, Tracked};
use crate::conntrack::tuple::Tuple;
use crate::nat::packet_plan::{self, Plan};
use crate::nat::Nat;
use crate::packet::{Packet, Transport};
use crate::side::Side;
use crate::time::Instant;
use crate::wire::icmp;
use crate::wire::vnet::{self, VnetHeader};

/// Why a new flow the rules accepted was not inserted.
pub(super) enum NewFlowError {
    /// The table refused it.
    Table(ConfirmError),
    /// Its NAT rule found no free port or identifier.
    Exhausted,
}

/// What NAT does to this packet (see [`crate::nat::packet_plan`]): for
/// a new IPv4 flow, destination NAT now (the rules see its result); for a
/// packet or ICMP error of a translated flow, its rewrite.
pub(super) fn plan<S: HelperState>(
    nat: &mut Nat,
    table: &Conntrack<S>,
    pkt: &Packet<'_>,
    side: Side,
    tracked: &Tracked,
    now: Instant,
) -> Plan {
    if !pkt.ip.src.is_ipv4() {
        return Plan::Keep;
    }
    match tracked.flow {
        FlowRef::Pending(ref flow) if nat.is_active() => {
            let middle = nat.destination(side, &flow.original, |t| table.tuple_taken(t, now));
            Plan::Rewrite {
                from: flow.original,
                to: middle,
                view: middle,
            }
        }
        FlowRef::Existing(id) => {
            let Some(flow) = table.get(id).filter(|f| f.nat.index().is_some()) else {
                return Plan::Keep;
            };
            let reply = table.reply_tuple(flow);
            match pkt.transport {
                // Redirects about a translated flow would send its ends
                // around the translation: dropped, as Linux does.
                Transport::Icmp(i) if i.icmp_type == icmp::REDIRECT => Plan::Refuse,
                Transport::Icmp(i) if icmp::is_error(i.icmp_type) => {
                    match crate::conntrack::icmp::embedded_tuple(i.body) {
                        Ok(quoted) => {
                            packet_plan::for_error(&quoted, tracked.dir, &flow.original, &reply)
                        }
                        Err(_) => Plan::Keep,
                    }
                }
                _ => packet_plan::for_packet(
                    &Tuple::of_packet(pkt),
                    tracked.dir,
                    &flow.original,
                    &reply,
                ),
            }
        }
        _ => Plan::Keep,
    }
}

/// Carry out `plan` on the forwarded packet in `buf` (IPv4, its header
/// `header_len` bytes; `vnet` says whether its transport checksum is
/// partial), counting it in `nat`'s counters.
pub(super) fn rewrite(
    nat: &mut Nat,
    buf: &mut [u8],
    header_len: usize,
    vnet: &VnetHeader,
    plan: &Plan,
) {
    match *plan {
        Plan::Keep | Plan::Refuse => {}
        Plan::Rewrite { from, to, .. } => {
            if from != to {
                let partial = vnet.flags & vnet::F_NEEDS_CSUM != 0;
                crate::nat::rewrite::rewrite_v4(buf, 0, header_len, &from, &to, partial, false);
                nat.stats.translated += 1;
            }
        }
        Plan::Error {
            quoted_from,
            quoted_to,
            outer_src,
            outer_dst,
        } => {
            crate::nat::rewrite::translate_icmp_error(
                buf,
                header_len,
                &quoted_from,
                &quoted_to,
                outer_src,
                outer_dst,
            );
            nat.stats.errors_translated += 1;
        }
    }
}

/// Insert a new flow the rules accepted into `table`: its source NAT
/// chosen now (leaving by the other side than `side`), after the
/// destination NAT `plan` holds; `plan` becomes the first packet's rewrite.
pub(super) fn confirm<S: HelperState>(
    nat: &mut Nat,
    table: &mut Conntrack<S>,
    flow: Flow,
    side: Side,
    plan: &mut Plan,
    now: Instant,
) -> Result<(), NewFlowError> {
    let Plan::Rewrite { to: middle, .. } = *plan else {
        return table
            .confirm(flow, None, now)
            .map(drop)
            .map_err(NewFlowError::Table);
    };
    let leaving = {
        let table = &*table;
        nat.source(side.other(), &middle, |t| table.tuple_taken(t, now))
    };
    let leaving = leaving.map_err(|_| {
        nat.stats.exhausted += 1;
        NewFlowError::Exhausted
    })?;
    table
        .confirm(flow, leaving.invert(), now)
        .map_err(NewFlowError::Table)?;
    if leaving != flow.original {
        nat.stats.mapped += 1;
    }
    *plan = Plan::Rewrite {
        from: flow.original,
        to: leaving,
        view: middle,
    };
    Ok(())
}
