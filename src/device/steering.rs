//! The steering program of a multi-queue TUN device: an eBPF socket filter
//! the kernel runs for every packet it hands the device
//! (`TUNSETSTEERINGEBPF`, Linux 4.16 and later), whose return value picks
//! the queue the packet waits in (`tun_ebpf_select_queue` in
//! drivers/net/tun.c: the value modulo the number of queues).
//!
//! It gives tunfw per-flow fairness before it reads a packet, as Linux's
//! default `fq_codel` queue discipline and a NIC's RSS rings give theirs:
//!
//! - an IP fragment goes to [`FRAGMENT_QUEUE`]: fragments are the cheapest
//!   packets to flood with and the costliest to handle, and a fragment has
//!   no ports to hash;
//! - any other IPv4 or IPv6 packet goes to one of the [`PACKET_QUEUES`]
//!   packet queues by a keyed hash of its addresses, protocol and (TCP and
//!   UDP) ports, so that every packet of a flow waits in one queue (no
//!   reordering) and a flood of one flow fills one ring while the other
//!   flows find room in theirs;
//! - anything else, or a packet too short for a field the program reads,
//!   goes to queue 0 (the classic `LD_ABS` loads end the program with 0).
//!
//! The event loop reads every queue in turn with the same budget (see
//! [`crate::event_loop`]), so a flood, however fast, gets one queue's share
//! of the reads while others have packets waiting. Two flows share a packet
//! queue with probability 1 in [`PACKET_QUEUES`]; a flood of many flows
//! (random sources) fills every queue and competes with everything, as it
//! would with one queue. The hash is keyed by two random 32-bit words chosen
//! at start (a multiply-xor hash: it only has to keep a peer from aiming its
//! flood at another flow's queue, whose key it never sees).
//!
//! A fragment, as the program sees it: IPv4 with a fragment offset or the
//! more-fragments bit (`frag_off & 0x3fff != 0`), or IPv6 whose first next
//! header is a Fragment header (44). An IPv6 packet whose upper-layer
//! header is not the first next header (extension headers) is hashed on
//! addresses and that header's number only. Where a packet waits changes,
//! never how it is handled.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Packet queues a device is given (queues 0 to `PACKET_QUEUES - 1`).
pub const PACKET_QUEUES: u32 = 8;
/// The queue fragments wait in: the one after the packet queues.
pub const FRAGMENT_QUEUE: u32 = PACKET_QUEUES;
/// Every queue a device is given.
pub const QUEUES: usize = PACKET_QUEUES as usize + 1;

/// One eBPF instruction as `struct bpf_insn` lays it out: opcode, the
/// destination register in the low nibble and the source in the high one,
/// a jump offset, an immediate.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

#[cfg(test)]
impl Insn {
    fn dst(self) -> usize {
        usize::from(self.regs & 0x0f)
    }

    fn src(self) -> usize {
        usize::from(self.regs >> 4)
    }
}

// Opcodes (<linux/bpf_common.h>, <linux/bpf.h>).
const MOV_X: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const XOR_X: u8 = 0xaf; // BPF_ALU64 | BPF_XOR | BPF_X
const MUL_K: u8 = 0x27; // BPF_ALU64 | BPF_MUL | BPF_K
const AND_K: u8 = 0x57; // BPF_ALU64 | BPF_AND | BPF_K
const LSH_K: u8 = 0x67; // BPF_ALU64 | BPF_LSH | BPF_K
const RSH_K: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOD_K: u8 = 0x97; // BPF_ALU64 | BPF_MOD | BPF_K
const LD_ABS_B: u8 = 0x30; // BPF_LD | BPF_ABS | BPF_B
const LD_ABS_H: u8 = 0x28; // BPF_LD | BPF_ABS | BPF_H (host order)
const LD_ABS_W: u8 = 0x20; // BPF_LD | BPF_ABS | BPF_W (host order)
const LD_IND_W: u8 = 0x40; // BPF_LD | BPF_IND | BPF_W, at src register + imm
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JA: u8 = 0x05; // BPF_JMP | BPF_JA
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// Registers the program uses: r0 loads, r6 the context (LD_ABS and
/// LD_IND read through it), r7 the hash, r8 the IPv4 header length, r9
/// the protocol.
const R0: u8 = 0;
const CTX: u8 = 6;
const HASH: u8 = 7;
const IHL: u8 = 8;
const PROTO: u8 = 9;

/// Jump targets of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    V6,
    Other,
    Fragment,
    Ports4,
    Ports6,
    Finish,
}

/// A small assembler: instructions in order, jumps to labels resolved at
/// the end.
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

impl Asm {
    fn op(&mut self, code: u8, dst: u8, src: u8, imm: i32) -> &mut Asm {
        self.insns.push(Insn {
            code,
            regs: dst | (src << 4),
            off: 0,
            imm,
        });
        self
    }

    fn jump(&mut self, code: u8, reg: u8, imm: i32, to: Label) -> &mut Asm {
        self.jumps.push((self.insns.len(), to));
        self.op(code, reg, 0, imm)
    }

    fn label(&mut self, l: Label) -> &mut Asm {
        self.labels.push((l, self.insns.len()));
        self
    }

    /// hash = (hash ^ r0) * multiplier.
    fn mix(&mut self, multiplier: i32) -> &mut Asm {
        self.op(XOR_X, HASH, R0, 0).op(MUL_K, HASH, 0, multiplier)
    }

    fn finish(mut self) -> Vec<Insn> {
        for &(at, to) in &self.jumps {
            let target = self
                .labels
                .iter()
                .find(|(l, _)| *l == to)
                .map(|&(_, pc)| pc);
            // Every label the program jumps to is placed (tests check
            // that every jump lands inside).
            let target = target.unwrap_or(self.insns.len());
            self.insns[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        self.insns
    }
}

/// The program for the hash key `(seed, multiplier)` (the multiplier is
/// made odd).
pub fn program(seed: u32, multiplier: u32) -> Vec<Insn> {
    let (seed, mul) = (seed as i32, (multiplier | 1) as i32);
    let mut a = Asm {
        insns: Vec::with_capacity(64),
        jumps: Vec::new(),
        labels: Vec::new(),
    };
    a.op(MOV_X, CTX, 1, 0)
        .op(LD_ABS_B, 0, 0, 0)
        .op(MOV_X, IHL, R0, 0)
        .op(RSH_K, R0, 0, 4)
        .jump(JEQ_K, R0, 6, Label::V6)
        .jump(JNE_K, R0, 4, Label::Other);
    // IPv4: a fragment, or the addresses, the protocol and the ports.
    a.op(AND_K, IHL, 0, 0x0f)
        .op(LSH_K, IHL, 0, 2)
        .op(LD_ABS_H, 0, 0, 6)
        .op(AND_K, R0, 0, 0x3fff)
        .jump(JNE_K, R0, 0, Label::Fragment)
        .op(LD_ABS_B, 0, 0, 9)
        .op(MOV_X, PROTO, R0, 0)
        .op(MOV_K, HASH, 0, seed)
        .op(LD_ABS_W, 0, 0, 12)
        .mix(mul)
        .op(LD_ABS_W, 0, 0, 16)
        .mix(mul)
        .op(MOV_X, R0, PROTO, 0)
        .mix(mul)
        .jump(JEQ_K, PROTO, 6, Label::Ports4)
        .jump(JNE_K, PROTO, 17, Label::Finish)
        .label(Label::Ports4)
        .op(LD_IND_W, 0, IHL, 0)
        .mix(mul)
        .jump(JA, 0, 0, Label::Finish);
    // IPv6: a Fragment header first, or the addresses, the first next
    // header and (TCP, UDP right after the fixed header) the ports.
    a.label(Label::V6)
        .op(LD_ABS_B, 0, 0, 6)
        .op(MOV_X, PROTO, R0, 0)
        .jump(JEQ_K, PROTO, 44, Label::Fragment)
        .op(MOV_K, HASH, 0, seed);
    for word in 0..8 {
        a.op(LD_ABS_W, 0, 0, 8 + 4 * word).mix(mul);
    }
    a.op(MOV_X, R0, PROTO, 0)
        .mix(mul)
        .jump(JEQ_K, PROTO, 6, Label::Ports6)
        .jump(JNE_K, PROTO, 17, Label::Finish)
        .label(Label::Ports6)
        .op(LD_ABS_W, 0, 0, 40)
        .mix(mul);
    // The hash's well-mixed high bits pick a packet queue.
    a.label(Label::Finish)
        .op(MOV_X, R0, HASH, 0)
        .op(RSH_K, R0, 0, 40)
        .op(MOD_K, R0, 0, PACKET_QUEUES as i32)
        .op(EXIT, 0, 0, 0)
        .label(Label::Fragment)
        .op(MOV_K, R0, 0, FRAGMENT_QUEUE as i32)
        .op(EXIT, 0, 0, 0)
        .label(Label::Other)
        .op(MOV_K, R0, 0, 0)
        .op(EXIT, 0, 0, 0);
    a.finish()
}

/// The first fields of `union bpf_attr` as `BPF_PROG_LOAD` reads them; the
/// kernel takes a shorter attribute than its own as zero-extended.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const LICENSE: &[u8] = b"MIT OR Apache-2.0\0";

/// Load `program` into the kernel (its verifier checks it) and return the
/// program's descriptor. Needs CAP_BPF or CAP_SYS_ADMIN unless the kernel
/// lets unprivileged users load socket filters.
pub fn load(program: &[Insn]) -> io::Result<OwnedFd> {
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
    };
    // SAFETY: bpf(BPF_PROG_LOAD) reads `size` bytes of `attr`, which
    // points at the program and the NUL-terminated license; both outlive
    // the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Make the loaded program `prog` the steering program of the TUN device
/// `queue` is attached to (any of its queues).
pub fn attach(queue: &impl AsRawFd, prog: &OwnedFd) -> io::Result<()> {
    let fd: libc::c_int = prog.as_raw_fd();
    // SAFETY: TUNSETSTEERINGEBPF reads an int, the program's descriptor;
    // the device takes its own reference to the program.
    if unsafe { libc::ioctl(queue.as_raw_fd(), libc::TUNSETSTEERINGEBPF, &fd) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
