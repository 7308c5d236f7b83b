//! The fragment queue's steering program: a six-branch eBPF socket filter
//! that a multi-queue TUN device runs for every packet the kernel hands it
//! (`TUNSETSTEERINGEBPF`, Linux 4.16 and later), whose return value picks the
//! queue the packet waits in (`tun_ebpf_select_queue` in
//! drivers/net/tun.c: the value modulo the number of queues).
//!
//! It returns [`FRAGMENT_QUEUE`] for an IP fragment and [`PACKET_QUEUE`] for
//! anything else, so that fragments, the cheapest packets to flood with and
//! the costliest to handle, wait in a ring of their own: when a fragment
//! flood fills that ring, the kernel drops the flood's excess there
//! (`tx_dropped`) while whole packets still find room in theirs, and the event
//! loop reads both rings in turn (see [`crate::event_loop`]). Linux itself
//! never meets this problem because it defragments in softirq, before any
//! queue; a multi-queue NIC with RSS is the nearest model.
//!
//! A fragment, as the program sees it: IPv4 with a fragment offset or the
//! more-fragments bit (`frag_off & 0x3fff != 0`), or IPv6 whose first next
//! header is a Fragment header (44). An IPv6 fragment behind other extension
//! headers (hop-by-hop options first) goes to the packet queue, which
//! changes where it waits, never how it is handled. Packets are read with
//! the classic `LD_ABS` loads, which end the program with 0 (the packet
//! queue) when a load falls outside the packet.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The queue every packet but a fragment waits in (the device's first).
pub const PACKET_QUEUE: i32 = 0;
/// The queue fragments wait in (the device's second).
pub const FRAGMENT_QUEUE: i32 = 1;

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

// Opcodes (<linux/bpf_common.h>, <linux/bpf.h>).
const MOV64_REG: u8 = 0x07 | 0xb0 | 0x08; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_IMM: u8 = 0x07 | 0xb0; // BPF_ALU64 | BPF_MOV | BPF_K
const RSH64_IMM: u8 = 0x07 | 0x70; // BPF_ALU64 | BPF_RSH | BPF_K
const AND64_IMM: u8 = 0x07 | 0x50; // BPF_ALU64 | BPF_AND | BPF_K
const LD_ABS_B: u8 = 0x20 | 0x10; // BPF_LD | BPF_ABS | BPF_B
const LD_ABS_H: u8 = 0x20 | 0x08; // BPF_LD | BPF_ABS | BPF_H (host order)
const JEQ_IMM: u8 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_IMM: u8 = 0x05 | 0x50; // BPF_JMP | BPF_JNE | BPF_K
const JA: u8 = 0x05; // BPF_JMP | BPF_JA
const EXIT: u8 = 0x05 | 0x90; // BPF_JMP | BPF_EXIT

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The program. Jump offsets count instructions after the jump's own.
pub const PROGRAM: [Insn; 15] = [
    // 0: LD_ABS reads the packet through the context in r6.
    insn(MOV64_REG, 6, 1, 0, 0),
    // 1-2: r0 = the IP version.
    insn(LD_ABS_B, 0, 0, 0, 0),
    insn(RSH64_IMM, 0, 0, 0, 4),
    // 3: IPv6 -> 9.
    insn(JEQ_IMM, 0, 0, 5, 6),
    // 4: neither IPv4 nor IPv6 -> 13 (the packet queue).
    insn(JNE_IMM, 0, 0, 8, 4),
    // 5-8: IPv4: flags and fragment offset, less DF: a fragment -> 11.
    insn(LD_ABS_H, 0, 0, 0, 6),
    insn(AND64_IMM, 0, 0, 0, 0x3fff),
    insn(JNE_IMM, 0, 0, 3, 0),
    insn(JA, 0, 0, 4, 0),
    // 9-10: IPv6: the first next header; not a Fragment header -> 13.
    insn(LD_ABS_B, 0, 0, 0, 6),
    insn(JNE_IMM, 0, 0, 2, 44),
    // 11-12: a fragment.
    insn(MOV64_IMM, 0, 0, 0, FRAGMENT_QUEUE),
    insn(EXIT, 0, 0, 0, 0),
    // 13-14: anything else.
    insn(MOV64_IMM, 0, 0, 0, PACKET_QUEUE),
    insn(EXIT, 0, 0, 0, 0),
];

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

/// Load [`PROGRAM`] into the kernel (its verifier checks it) and return the
/// program's descriptor. Needs CAP_BPF or CAP_SYS_ADMIN unless the kernel
/// lets unprivileged users load socket filters.
pub fn load() -> io::Result<OwnedFd> {
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: PROGRAM.len() as u32,
        insns: PROGRAM.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
    };
    // SAFETY: bpf(BPF_PROG_LOAD) reads `size` bytes of `attr`, which
    // points at the program and the NUL-terminated license; both are
    // statics that outlive the call.
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
mod tests {
    use super::*;

    /// Every jump lands inside the program and the program ends with exit:
    /// what the verifier would refuse, checked without a kernel.
    #[test]
    fn jumps_land_inside_and_paths_end_in_exit() {
        for (pc, i) in PROGRAM.iter().enumerate() {
            if matches!(i.code, JEQ_IMM | JNE_IMM | JA) {
                let target = pc as i64 + 1 + i64::from(i.off);
                assert!((0..PROGRAM.len() as i64).contains(&target), "jump at {pc}");
            }
        }
        assert_eq!(PROGRAM[PROGRAM.len() - 1].code, EXIT);
    }

    /// A tiny interpreter of the instructions the program uses, to check
    /// what it returns for crafted packets; a load outside the packet ends
    /// it with 0, as the kernel's LD_ABS does.
    fn run(packet: &[u8]) -> i64 {
        let (mut r0, mut pc) = (0i64, 0usize);
        loop {
            let i = PROGRAM[pc];
            pc += 1;
            match i.code {
                MOV64_REG => {}
                MOV64_IMM => r0 = i64::from(i.imm),
                RSH64_IMM => r0 >>= i.imm,
                AND64_IMM => r0 &= i64::from(i.imm),
                LD_ABS_B => match packet.get(i.imm as usize) {
                    Some(&b) => r0 = i64::from(b),
                    None => return 0,
                },
                LD_ABS_H => match packet.get(i.imm as usize..i.imm as usize + 2) {
                    Some(b) => r0 = i64::from(u16::from_be_bytes([b[0], b[1]])),
                    None => return 0,
                },
                JEQ_IMM if r0 == i64::from(i.imm) => pc = (pc as i64 + i64::from(i.off)) as usize,
                JNE_IMM if r0 != i64::from(i.imm) => pc = (pc as i64 + i64::from(i.off)) as usize,
                JEQ_IMM | JNE_IMM => {}
                JA => pc = (pc as i64 + i64::from(i.off)) as usize,
                EXIT => return r0,
                other => panic!("opcode {other:#x} not interpreted"),
            }
        }
    }

    fn v4(frag_off: u16) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[6..8].copy_from_slice(&frag_off.to_be_bytes());
        p
    }

    fn v6(next_header: u8) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60;
        p[6] = next_header;
        p
    }

    #[test]
    fn fragments_go_to_their_queue_and_the_rest_to_the_packet_queue() {
        let cases: [(&str, Vec<u8>, i32); 11] = [
            ("IPv4 whole", v4(0), PACKET_QUEUE),
            ("IPv4 DF", v4(0x4000), PACKET_QUEUE),
            ("IPv4 first fragment", v4(0x2000), FRAGMENT_QUEUE),
            ("IPv4 first fragment, DF too", v4(0x6000), FRAGMENT_QUEUE),
            ("IPv4 last fragment", v4(0x00b9), FRAGMENT_QUEUE),
            ("IPv4 evil bit alone", v4(0x8000), PACKET_QUEUE),
            ("IPv6 TCP", v6(6), PACKET_QUEUE),
            ("IPv6 fragment header", v6(44), FRAGMENT_QUEUE),
            ("IPv6 hop-by-hop first", v6(0), PACKET_QUEUE),
            ("not IP", vec![0x10; 40], PACKET_QUEUE),
            ("IPv4 cut short", vec![0x45, 0, 0], PACKET_QUEUE),
        ];
        for (name, packet, queue) in cases {
            assert_eq!(run(&packet), i64::from(queue), "{name}");
        }
        assert_eq!(run(&[]), i64::from(PACKET_QUEUE), "empty");
    }

    /// The kernel's verifier accepts the program. Loading needs privilege:
    /// where the kernel refuses for that reason the test says so and checks
    /// nothing more (the test command runs it as root).
    #[test]
    fn kernel_verifier_accepts_the_program() {
        match load() {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
                eprintln!("skipped: loading eBPF needs privilege here ({e})");
            }
            Err(e) => panic!("the kernel refused the steering program: {e}"),
        }
    }
}
