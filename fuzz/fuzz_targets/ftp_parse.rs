//! Fuzz the FTP helper's parsers and its line reassembly: any bytes, split at
//! any point, in either direction, must never panic, and anything announced
//! must be a real port.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunfw::conntrack::Dir;
use tunfw::helpers::ftp::{parse, FtpState, Inspect, Parsed};
use tunfw::matchers::Family;
use tunfw::wire::tcp::SeqNum;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let dir = if data[0] & 1 == 0 {
        Dir::Original
    } else {
        Dir::Reply
    };
    let family = if data[0] & 2 == 0 {
        Family::V4
    } else {
        Family::V6
    };
    let body = &data[1..];
    if let Parsed::Announce { port, .. } = parse(dir, family, body) {
        assert_ne!(port, 0);
    }
    // Feed the same bytes as a segment stream cut at positions taken from the
    // input itself, after a line start.
    let mut st = FtpState::default();
    let mut seq = SeqNum(1000);
    st.inspect(dir, family, seq, b"NOOP\r\n");
    seq = seq + 6;
    let cut = usize::from(data[0] >> 2) % (body.len() + 1);
    for piece in [&body[..cut], &body[cut..]] {
        if let Inspect::Announce { port, .. } = st.inspect(dir, family, seq, piece) {
            assert_ne!(port, 0);
        }
        seq = seq + piece.len() as u32;
    }
});
