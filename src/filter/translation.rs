//! The firewall's address translation steps (see [`crate::nat`]): the plan
//! of a packet before the rules, the source NAT of a new flow they
//! accepted, and the rewrite of a forwarded packet; functions of the NAT
//! state and the table, which [`super::Firewall`] calls.

use crate::conntrack::flow::{Flow, FlowId};
use crate::conntrack::table::{ConfirmError, Conntrack, HelperState};
use crate::conntrack::track::{FlowRef, Tracked};
use crate::conntrack::tuple::{Dir, Tuple};
use crate::helpers::ftp::FtpState;
use crate::helpers::glue::Announced;
use crate::nat::ftp::{format_arguments, ARGUMENTS_MAX};
use crate::nat::packet_plan::{self, Plan};
use crate::nat::Nat;
use crate::packet::{Packet, Transport};
use crate::side::Side;
use crate::time::Instant;
use crate::wire::icmp;
use crate::wire::tcp::SeqNum;
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
        FlowRef::Pending(ref flow) if tracked.follows.is_some() => {
            let Some(announcing) = announcing_tuple(table, tracked) else {
                return Plan::Keep;
            };
            let port = tracked.follows.map_or(0, |(_, f)| f.port);
            let middle = Nat::follow_destination(&flow.original, &announcing, port);
            Plan::Rewrite {
                from: flow.original,
                to: middle,
                view: middle,
            }
        }
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

/// The tuple, before translation, of the packets by which the control
/// flow of an expected flow announced it (the kernel's
/// `ct->master->tuplehash[!exp->dir]`), if `tracked` follows one.
fn announcing_tuple<S: HelperState>(table: &Conntrack<S>, tracked: &Tracked) -> Option<Tuple> {
    let (master, follow) = tracked.follows?;
    let flow = table.get(master)?;
    Some(table.tuple(flow, follow.dir.other()))
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
    tracked: &Tracked,
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
        let taken = |t: &Tuple| table.tuple_taken(t, now);
        match announcing_tuple(table, tracked) {
            // An announced flow follows its control flow, not the rules.
            Some(announcing) => nat.follow_source(&middle, &announcing, taken),
            None => nat.source(side.other(), &middle, taken),
        }
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
    if tracked.follows.is_some() {
        nat.stats.followed += 1;
    }
    *plan = Plan::Rewrite {
        from: flow.original,
        to: leaving,
        view: middle,
    };
    Ok(())
}

/// An announcement the FTP helper filed for a translated control flow,
/// to be written into its packet: where its arguments are in the packet,
/// and the segment's sequence number (as its sender numbered it).
#[derive(Clone, Copy, Debug)]
pub(super) struct FtpEdit {
    /// What to announce.
    pub announced: Announced,
    /// Offset of the arguments in the packet.
    pub at: usize,
    /// The segment's sequence number.
    pub seq: SeqNum,
}

/// Write `edit`'s announcement into the forwarded packet `buf[..len]`
/// (`buf[len..]` is room to grow) of flow `id`, sent in `dir`, and record
/// a length change in the flow's sequence adjustment; the new length, or
/// `None` (the expectation withdrawn, counted) when the packet cannot
/// grow.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_announcement(
    nat: &mut Nat,
    table: &mut Conntrack<FtpState>,
    (id, dir): (FlowId, Dir),
    buf: &mut [u8],
    len: usize,
    header_len: usize,
    vnet: &VnetHeader,
    edit: &FtpEdit,
) -> Option<usize> {
    let a = edit.announced;
    let mut text = [0u8; ARGUMENTS_MAX];
    let n = format_arguments(a.command, a.addr, a.port, &mut text);
    let partial = vnet.flags & vnet::F_NEEDS_CSUM != 0;
    let span = (edit.at, a.span.1);
    let written = (n > 0)
        .then(|| crate::nat::ftp::mangle(buf, len, header_len, span, &text[..n], partial))
        .flatten();
    let view = table.helper_view(id)?;
    let Some(new_len) = written else {
        if let Some(eid) = view.state.expectation.take() {
            view.expectations.remove(eid);
        }
        nat.stats.ftp_unwritable += 1;
        return None;
    };
    view.state
        .seqadj
        .set(dir, edit.seq, new_len as i32 - len as i32);
    nat.stats.ftp_rewritten += 1;
    Some(new_len)
}

/// Move the sequence numbers of the forwarded TCP segment in `buf` (its
/// IP header `header_len` bytes) of flow `id`, sent in `dir`, when a
/// rewrite changed a line's length in that flow.
pub(super) fn adjust_sequence<S: HelperState>(
    nat: &mut Nat,
    table: &Conntrack<S>,
    (id, dir): (FlowId, Dir),
    buf: &mut [u8],
    header_len: usize,
    vnet: &VnetHeader,
) {
    let Some(adj) = table.seq_adjust(id) else {
        return;
    };
    let partial = vnet.flags & vnet::F_NEEDS_CSUM != 0;
    if crate::nat::seqadj::adjust_segment(buf, header_len, dir, &adj, partial) {
        nat.stats.seq_adjusted += 1;
    }
}
