//! The packet description `tunfw explain` reads: words such as
//! `tcp 10.0.0.2:5555 -> 192.0.2.1:80 syn from lan`.
//!
//! Grammar (words separated by spaces; the order of the words after the
//! addresses is free):
//!
//! ```text
//! PROTO SRC -> DST [FLAGS] [type N [code M] | ICMP-NAME] [id N] [ttl N] from lan|wan
//! ```
//!
//! - PROTO: `tcp`, `udp`, `icmp`, `icmpv6` or a protocol number.
//! - SRC, DST: `a.b.c.d:port`, `[v6addr]:port`, or an address alone (port
//!   0; ICMP and other protocols have no port).
//! - FLAGS (TCP): `syn`, `syn,ack`, `ack`, `fin,ack`, `rst`, ... (`syn`
//!   when absent); `none` for no flag.
//! - ICMP and ICMPv6: `type N [code M]` or a name (`echo-request`, the
//!   default, `echo-reply`, `dest-unreachable`, `port-unreachable`,
//!   `time-exceeded`, `packet-too-big`); `id N` the query identifier.
//! - `ttl N`: the TTL or hop limit (64 when absent).

use core::net::IpAddr;

use crate::side::Side;
use crate::wire::tcp::flags;
use crate::wire::{icmp, icmpv6, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// A packet described on the command line, checked: the addresses are of
/// one family, ports only on TCP and UDP, flags only on TCP, ICMP types
/// only on ICMP and ICMPv6 (ICMP over IPv4, ICMPv6 over IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Description {
    /// IP protocol number.
    pub protocol: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (TCP, UDP), else 0.
    pub sport: u16,
    /// Destination port (TCP, UDP), else 0.
    pub dport: u16,
    /// TCP flags (TCP only).
    pub tcp_flags: u8,
    /// ICMP or ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP or ICMPv6 code.
    pub icmp_code: u8,
    /// ICMP query identifier.
    pub icmp_id: u16,
    /// TTL or hop limit.
    pub ttl: u8,
    /// The side the packet comes from.
    pub side: Side,
}

const TCP_FLAGS: [(&str, u8); 8] = [
    ("fin", flags::FIN),
    ("syn", flags::SYN),
    ("rst", flags::RST),
    ("psh", flags::PSH),
    ("ack", flags::ACK),
    ("urg", flags::URG),
    ("ece", 0x40),
    ("cwr", 0x80),
];

/// The flags as the description writes them: `syn,ack`, or `none`.
pub fn flags_text(f: u8) -> String {
    let names: Vec<&str> = TCP_FLAGS
        .iter()
        .filter(|(_, bit)| f & bit != 0)
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

fn parse_flags(word: &str) -> Option<u8> {
    if word == "none" {
        return Some(0);
    }
    word.split(',').try_fold(0u8, |acc, name| {
        TCP_FLAGS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, bit)| acc | bit)
    })
}

/// ICMP (`v6`: ICMPv6) type and code by name.
fn icmp_name(name: &str, v6: bool) -> Option<(u8, u8)> {
    Some(match (name, v6) {
        ("echo-request" | "ping", false) => (icmp::ECHO_REQUEST, 0),
        ("echo-reply" | "pong", false) => (icmp::ECHO_REPLY, 0),
        ("dest-unreachable" | "destination-unreachable", false) => (icmp::DEST_UNREACHABLE, 0),
        ("port-unreachable", false) => (icmp::DEST_UNREACHABLE, icmp::CODE_PORT_UNREACHABLE),
        ("time-exceeded", false) => (icmp::TIME_EXCEEDED, 0),
        ("echo-request" | "ping", true) => (icmpv6::ECHO_REQUEST, 0),
        ("echo-reply" | "pong", true) => (icmpv6::ECHO_REPLY, 0),
        ("dest-unreachable" | "destination-unreachable", true) => (icmpv6::DEST_UNREACHABLE, 0),
        ("port-unreachable", true) => (icmpv6::DEST_UNREACHABLE, icmpv6::CODE_PORT_UNREACHABLE),
        ("time-exceeded", true) => (icmpv6::TIME_EXCEEDED, 0),
        ("packet-too-big", true) => (icmpv6::PACKET_TOO_BIG, 0),
        _ => return None,
    })
}

/// An endpoint: `a.b.c.d[:port]`, `[v6][:port]` or a bare IPv6 address.
fn parse_endpoint(word: &str, what: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = |why: &str| format!("bad {what} {word:?}: {why}");
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad(&format!("{p:?} is not a port (0-65535)")))
    };
    if let Some(rest) = word.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ] after the IPv6 address"))?;
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| bad(&format!("{addr:?} is not an IP address")))?;
        return match after {
            "" => Ok((ip, None)),
            p => match p.strip_prefix(':') {
                Some(p) => Ok((ip, Some(port(p)?))),
                None => Err(bad("write [address]:port")),
            },
        };
    }
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    match word.rsplit_once(':') {
        Some((addr, p)) if !addr.contains(':') => {
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| bad(&format!("{addr:?} is not an IP address")))?;
            Ok((ip, Some(port(p)?)))
        }
        _ => Err(bad(
            "not an address (a.b.c.d, a.b.c.d:port, v6addr or [v6addr]:port)",
        )),
    }
}

fn number<T: core::str::FromStr>(
    words: &mut core::slice::Iter<'_, &str>,
    what: &str,
) -> Result<T, String> {
    let w = words
        .next()
        .ok_or_else(|| format!("{what} needs a number after it"))?;
    w.parse()
        .map_err(|_| format!("bad {what} {w:?}: not a number in range"))
}

impl Description {
    /// Parse the words of a description; the error names the word at fault.
    pub fn parse(words: &[&str]) -> Result<Description, String> {
        let mut it = words.iter();
        let proto_word = it.next().ok_or(
            "empty packet description: try `tcp 10.0.0.2:5555 -> 192.0.2.1:80 syn from lan`",
        )?;
        let protocol = match proto_word.to_ascii_lowercase().as_str() {
            "tcp" => PROTO_TCP,
            "udp" => PROTO_UDP,
            "icmp" => PROTO_ICMP,
            "icmpv6" | "ipv6-icmp" => PROTO_ICMPV6,
            n => n.parse().map_err(|_| {
                format!("bad protocol {proto_word:?}: tcp, udp, icmp, icmpv6 or a number")
            })?,
        };
        let src_word = it
            .next()
            .ok_or("missing source address after the protocol")?;
        let (src, sport) = parse_endpoint(src_word, "source")?;
        match it.next() {
            Some(&"->" | &"to") => {}
            Some(w) => return Err(format!("expected -> (or to) after the source, found {w:?}")),
            None => return Err("missing -> and destination".into()),
        }
        let dst_word = it.next().ok_or("missing destination address after ->")?;
        let (dst, dport) = parse_endpoint(dst_word, "destination")?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(format!(
                "source {src} and destination {dst} are of two IP families"
            ));
        }
        let ported = matches!(protocol, PROTO_TCP | PROTO_UDP);
        let is_icmp = matches!(protocol, PROTO_ICMP | PROTO_ICMPV6);
        if !ported && (sport.is_some() || dport.is_some()) {
            return Err(format!(
                "{proto_word} has no ports: write the addresses alone"
            ));
        }
        match (protocol, src.is_ipv4()) {
            (PROTO_ICMP, false) => {
                return Err("icmp is IPv4's: use icmpv6 with IPv6 addresses".into())
            }
            (PROTO_ICMPV6, true) => {
                return Err("icmpv6 is IPv6's: use icmp with IPv4 addresses".into())
            }
            _ => {}
        }
        let v6 = protocol == PROTO_ICMPV6;
        let (mut icmp_type, mut icmp_code) = match v6 {
            true => (icmpv6::ECHO_REQUEST, 0),
            false => (icmp::ECHO_REQUEST, 0),
        };
        let mut d = Description {
            protocol,
            src,
            dst,
            sport: sport.unwrap_or(0),
            dport: dport.unwrap_or(0),
            tcp_flags: flags::SYN,
            icmp_type,
            icmp_code,
            icmp_id: 1,
            ttl: 64,
            side: Side::Lan,
        };
        let mut side = None;
        while let Some(&w) = it.next() {
            let lower = w.to_ascii_lowercase();
            match lower.as_str() {
                "from" => {
                    side = Some(match it.next().map(|s| s.to_ascii_lowercase()).as_deref() {
                        Some("lan") => Side::Lan,
                        Some("wan") => Side::Wan,
                        Some(other) => return Err(format!("bad side {other:?}: from lan or from wan")),
                        None => return Err("from needs lan or wan after it".into()),
                    })
                }
                "ttl" | "hlim" => d.ttl = number(&mut it, "ttl")?,
                "type" | "code" | "id" if !is_icmp => {
                    return Err(format!("{w} is for icmp and icmpv6, not {proto_word}"))
                }
                "type" => icmp_type = number(&mut it, "icmp type")?,
                "code" => icmp_code = number(&mut it, "icmp code")?,
                "id" => d.icmp_id = number(&mut it, "icmp id")?,
                _ if protocol == PROTO_TCP => {
                    d.tcp_flags = parse_flags(&lower).ok_or_else(|| {
                        format!("bad word {w:?}: TCP flags are syn, ack, fin, rst, psh, urg, ece, cwr joined by commas (or none); other words: ttl N, from lan|wan")
                    })?
                }
                _ if is_icmp => {
                    (icmp_type, icmp_code) = icmp_name(&lower, v6).ok_or_else(|| {
                        format!("bad word {w:?}: an ICMP name (echo-request, echo-reply, dest-unreachable, port-unreachable, time-exceeded{}) or type N code M", if v6 { ", packet-too-big" } else { "" })
                    })?
                }
                _ => return Err(format!("bad word {w:?}: expected ttl N or from lan|wan")),
            }
        }
        d.side = side.ok_or("missing `from lan` or `from wan`: the side the packet comes from")?;
        d.icmp_type = icmp_type;
        d.icmp_code = icmp_code;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Description, String> {
        Description::parse(&s.split_whitespace().collect::<Vec<_>>())
    }

    #[test]
    fn descriptions_parse_or_name_the_fault() {
        let d = p("tcp 10.0.0.2:5555 -> 192.0.2.1:80 syn,ack from wan").unwrap();
        assert_eq!(
            (d.sport, d.dport, d.tcp_flags),
            (5555, 80, flags::SYN | flags::ACK)
        );
        assert_eq!(d.side, Side::Wan);
        let d = p("udp [fd00::2]:53 -> [fd00:1::1]:53 from lan").unwrap();
        assert!(d.src.is_ipv6());
        let d = p("icmp 10.0.0.2 -> 192.0.2.1 type 3 code 4 from lan").unwrap();
        assert_eq!((d.icmp_type, d.icmp_code), (3, 4));
        let d = p("icmpv6 fd00::2 -> fd00:1::1 echo-request id 7 from lan").unwrap();
        assert_eq!((d.icmp_type, d.icmp_id), (128, 7));
        assert_eq!(p("47 10.0.0.2 -> 10.0.0.3 from lan").unwrap().protocol, 47);
        for (text, needle) in [
            ("", "empty"),
            ("tcp 10.0.0.2:5555 192.0.2.1:80 from lan", "expected ->"),
            ("tcp 10.0.0.2:99999 -> 192.0.2.1:80 from lan", "not a port"),
            (
                "tcp 10.0.0.300:1 -> 192.0.2.1:80 from lan",
                "not an IP address",
            ),
            ("tcp 10.0.0.2:1 -> [fd00::1]:80 from lan", "two IP families"),
            (
                "tcp 10.0.0.2:1 -> 192.0.2.1:80 syn,bogus from lan",
                "TCP flags",
            ),
            ("tcp 10.0.0.2:1 -> 192.0.2.1:80 syn", "missing `from lan`"),
            ("tcp 10.0.0.2:1 -> 192.0.2.1:80 from dmz", "bad side"),
            ("icmp 10.0.0.2:1 -> 192.0.2.1 from lan", "no ports"),
            ("icmp fd00::1 -> fd00::2 from lan", "icmpv6"),
            ("udp 10.0.0.2:1 -> 192.0.2.1:2 type 3 from lan", "for icmp"),
            ("frob 10.0.0.2 -> 10.0.0.3 from lan", "bad protocol"),
        ] {
            let e = p(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
