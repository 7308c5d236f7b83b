//! Fuzz the config loader on arbitrary bytes, as `--check`, start-up and
//! reload read a file: [`read_text`] (the size and UTF-8 checks behind
//! [`Config::load`]) and then [`Config::parse`]. Must never panic; every
//! error names the file and a line and column inside the text (or just
//! past its end); a config that parses parses again, fits the memory
//! budget, and (when its tables are small) builds a firewall that
//! processes a packet from each side and takes it as a reload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunfw::config::{read_text, Config, ConfigError, MEMORY_BUDGET_BYTES};
use tunfw::filter::Firewall;
use tunfw::side::Side;
use tunfw::time::Instant;

const NAME: &str = "fuzz.ron";

/// The error is in `NAME`, at a line of `text` and a column of that line
/// (1-based, in characters; one past the last character is the end).
fn assert_in_text(e: &ConfigError, text: &str) {
    assert_eq!(e.file, NAME, "{e}");
    assert!(!e.message.is_empty(), "{e}");
    assert!(e.line >= 1 && e.col >= 1, "{e}");
    let line = text.split('\n').nth(e.line - 1);
    let Some(line) = line else {
        panic!("{e}: the text has {} lines", text.split('\n').count());
    };
    assert!(e.col <= line.chars().count() + 1, "{e}: line {line:?}");
}

fuzz_target!(|data: &[u8]| {
    let text = match read_text(data, NAME) {
        Ok(t) => t,
        Err(e) => {
            // Only the UTF-8 check can fail here (the input is far under
            // the size limit): the error points into the valid prefix.
            let valid = match std::str::from_utf8(data) {
                Ok(_) => panic!("valid UTF-8 refused: {e}"),
                Err(u) => std::str::from_utf8(&data[..u.valid_up_to()]).unwrap_or_default(),
            };
            assert_in_text(&e, valid);
            return;
        }
    };
    let config = match Config::parse(&text, NAME) {
        Ok(c) => c,
        Err(e) => {
            assert_in_text(&e, &text);
            return;
        }
    };
    let again = Config::parse(&text, NAME).expect("an accepted config is accepted again");
    let memory = config.table_memory();
    assert_eq!(memory, again.table_memory());
    assert!(memory.check(MEMORY_BUDGET_BYTES).is_ok());
    // Safe to swap in: build a firewall from it (only small tables, so each
    // run stays cheap), pass a packet each way, reload it with itself.
    if memory.total() <= 8 << 20 {
        let mut fw = Firewall::new(&config);
        let mut answer = [0u8; 1500];
        let now = Instant::from_secs(1);
        let mut udp =
            *b"\x45\0\0\x1c\0\0\0\0\x40\x11\0\0\x0a\0\x01\x02\x0a\0\x02\x02\x04\0\0\x35\0\x08\0\0";
        let c = tunfw::wire::checksum::internet_checksum(&[&udp[..20]]);
        udp[10..12].copy_from_slice(&c.to_be_bytes());
        for side in [Side::Lan, Side::Wan] {
            let mut pkt = udp;
            let v = fw.process(side, &mut pkt, &mut answer, now);
            assert!(v.answer_len <= answer.len());
        }
        fw.reload(&again, now);
        fw.tick(Instant::from_secs(2));
    }
});
