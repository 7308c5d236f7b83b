//! The steering program, run by a small interpreter of the instructions it
//! uses on crafted packets, and by the kernel's verifier.

use super::*;

/// Run `prog` on `packet` as the kernel would: a load outside the packet
/// ends the program with 0, as `LD_ABS`/`LD_IND` do.
fn run(prog: &[Insn], packet: &[u8]) -> u64 {
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    let load = |at: u64, n: usize| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b = packet.get(at..at.checked_add(n)?)?;
        Some(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
    };
    loop {
        let i = prog[pc];
        pc += 1;
        let (d, s, k) = (i.dst(), i.src(), i64::from(i.imm) as u64);
        let jump = |pc: usize| (pc as i64 + i64::from(i.off)) as usize;
        match i.code {
            MOV_X => r[d] = r[s],
            MOV_K => r[d] = k,
            XOR_X => r[d] ^= r[s],
            MUL_K => r[d] = r[d].wrapping_mul(k),
            AND_K => r[d] &= k,
            LSH_K => r[d] <<= k,
            RSH_K => r[d] >>= k,
            MOD_K => r[d] %= k,
            LD_ABS_B | LD_ABS_H | LD_ABS_W | LD_IND_W => {
                let n = match i.code {
                    LD_ABS_B => 1,
                    LD_ABS_H => 2,
                    _ => 4,
                };
                let base = if i.code == LD_IND_W { r[s] } else { 0 };
                match load(base + k, n) {
                    Some(v) => r[0] = v,
                    None => return 0,
                }
            }
            JEQ_K if r[d] == k => pc = jump(pc),
            JNE_K if r[d] != k => pc = jump(pc),
            JEQ_K | JNE_K => {}
            JA => pc = jump(pc),
            EXIT => return r[0],
            other => panic!("opcode {other:#x} not interpreted"),
        }
    }
}

fn v4(frag_off: u16, protocol: u8, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[6..8].copy_from_slice(&frag_off.to_be_bytes());
    p[9] = protocol;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p
}

fn v6(next_header: u8, sport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x60;
    p[6] = next_header;
    p[8] = 0xfd;
    p[39] = 2;
    p[40..42].copy_from_slice(&sport.to_be_bytes());
    p
}

fn prog() -> Vec<Insn> {
    program(0x1234_5678, 0x9e37_79b9)
}

#[test]
fn jumps_land_inside_and_the_program_ends_in_exit() {
    let p = prog();
    for (pc, i) in p.iter().enumerate() {
        if matches!(i.code, JEQ_K | JNE_K | JA) {
            let target = pc as i64 + 1 + i64::from(i.off);
            assert!((0..p.len() as i64).contains(&target), "jump at {pc}");
            assert!(i.off >= 0, "no loops");
        }
    }
    assert_eq!(p[p.len() - 1].code, EXIT);
}

#[test]
fn fragments_go_to_the_fragment_queue() {
    let p = prog();
    let frag = u64::from(FRAGMENT_QUEUE);
    for (name, packet) in [
        ("IPv4 first fragment", v4(0x2000, 17, 1, 2)),
        ("IPv4 first fragment, DF too", v4(0x6000, 17, 1, 2)),
        ("IPv4 last fragment", v4(0x00b9, 6, 1, 2)),
        ("IPv6 fragment header", v6(44, 1)),
    ] {
        assert_eq!(run(&p, &packet), frag, "{name}");
    }
    for (name, packet) in [
        ("IPv4 whole", v4(0, 17, 1, 2)),
        ("IPv4 DF", v4(0x4000, 6, 1, 2)),
        ("IPv4 evil bit alone", v4(0x8000, 6, 1, 2)),
        ("IPv6 TCP", v6(6, 1)),
        ("IPv6 hop-by-hop first", v6(0, 1)),
    ] {
        assert!(run(&p, &packet) < u64::from(PACKET_QUEUES), "{name}");
    }
}

#[test]
fn anything_else_goes_to_queue_0() {
    let p = prog();
    assert_eq!(run(&p, &[]), 0, "empty");
    assert_eq!(run(&p, &[0x10; 40]), 0, "not IP");
    assert_eq!(run(&p, &[0x45, 0, 0]), 0, "IPv4 cut short");
}

#[test]
fn a_flow_keeps_its_queue_and_flows_spread_over_all() {
    let p = prog();
    let mut per_queue = [0u32; PACKET_QUEUES as usize];
    for sport in 0..4000u16 {
        let tcp = run(&p, &v4(0x4000, 6, 10000 + sport, 80));
        assert_eq!(
            tcp,
            run(&p, &v4(0, 6, 10000 + sport, 80)),
            "DF is not hashed"
        );
        per_queue[tcp as usize] += 1;
        let udp6 = run(&p, &v6(17, sport));
        assert!(udp6 < u64::from(PACKET_QUEUES));
        per_queue[udp6 as usize] += 1;
    }
    // 8,000 flows over 8 queues: 1,000 each expected.
    for (q, &n) in per_queue.iter().enumerate() {
        assert!((800..1200).contains(&n), "queue {q}: {n} of 8000");
    }
    // ICMP is hashed on addresses and protocol only: one queue per pair.
    assert_eq!(run(&p, &v4(0, 1, 1, 2)), run(&p, &v4(0, 1, 3, 4)));
}

#[test]
fn the_key_moves_flows() {
    let (a, b) = (prog(), program(0xdead_beef, 0x0bad_cafe));
    let moved = (0..200u16)
        .filter(|&s| run(&a, &v4(0, 17, s, 53)) != run(&b, &v4(0, 17, s, 53)))
        .count();
    assert!(
        moved > 150,
        "{moved} of 200 flows changed queue with the key"
    );
}

/// The kernel's verifier accepts the program. Loading needs privilege:
/// where the kernel refuses for that reason the test says so and checks
/// nothing more (the test command runs it as root).
#[test]
fn kernel_verifier_accepts_the_program() {
    match load(&prog()) {
        Ok(_) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) => {
            eprintln!("skipped: loading eBPF needs privilege here ({e})");
        }
        Err(e) => panic!("the kernel refused the steering program: {e}"),
    }
}
