//! Fuzz the iptables importer on arbitrary text: one IPv4 input (iptables
//! commands or `iptables-save`), one IPv6 input (`import-iptables -6`), or
//! both in either order, as `tunfw import-iptables A -6 B` reads them. Must
//! never panic; an error names one of the inputs and a line in it; a
//! translation is a config that validates (what `import-iptables` checks
//! before printing it) and translates the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunfw::config::Config;
use tunfw::import::{translate, translate_inputs, Input};
use tunfw::matchers::Family;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // Two inputs are separated by the first NUL.
    let (first, second) = text.split_once('\0').unwrap_or((&text, ""));
    let v4 = |text| Input {
        text,
        name: "rules.v4",
        family: Family::V4,
    };
    let v6 = |text| Input {
        text,
        name: "rules.v6",
        family: Family::V6,
    };
    let inputs = match mode % 4 {
        0 => vec![v4(&text)],
        1 => vec![v6(&text)],
        2 => vec![v4(first), v6(second)],
        _ => vec![v6(first), v4(second)],
    };
    let result = if mode % 4 == 0 {
        let one = translate(&text, "rules.v4");
        assert_eq!(
            one,
            translate_inputs(&inputs),
            "translate is one IPv4 input"
        );
        one
    } else {
        translate_inputs(&inputs)
    };
    match result {
        Ok(ron) => {
            if let Err(e) = Config::parse(&ron, "<imported>") {
                panic!("the translation does not validate: {e}\n{ron}");
            }
            assert_eq!(translate_inputs(&inputs).as_ref(), Ok(&ron));
        }
        Err(e) => {
            let Some(input) = inputs.iter().find(|i| i.name == e.file) else {
                panic!("the error names no input: {e:?}");
            };
            let lines = input.text.lines().count();
            assert!(
                e.line >= 1 && e.line <= lines,
                "{}:{}: {} (the input has {lines} lines)",
                e.file,
                e.line,
                e.message
            );
            assert!(!e.message.is_empty());
        }
    }
});
