//! The firewall the packet_path and control targets run against (included
//! with `#[path]`: fuzz targets are separate binaries).

use tunfw::config::Config;
use tunfw::filter::Firewall;

/// The default rules with small tables, so that each run is cheap and
/// eviction is exercised: 64 flows, 8 FTP control flows, and a 128 KiB
/// reassembler (each run builds its own, and its cap is reached within one
/// input); the LAN masqueraded and port 21 forwarded, so that translation,
/// the FTP helper's rewrites and sequence adjustment run too.
pub fn small_firewall() -> Firewall {
    let text = tunfw::config::DEFAULT_CONFIG
        .replace("max: 65536", "max: 64")
        .replace("max_control_flows: 4096", "max_control_flows: 8")
        .replace(
            "ipv6: Track,",
            "ipv6: Track, defrag: (high_thresh: 131072, low_thresh: 65536),",
        )
        .replace(
            "router: (lan: None, wan: None, lan6: None, wan6: None),",
            r#"router: (lan: "10.0.1.1", wan: "10.0.2.1", lan6: None, wan6: None),
    nat: (
        source: [(out: Wan, src: "10.0.1.0/24", to: Masquerade)],
        destination: [(from: Wan, proto: Tcp, dst: "10.0.2.1", dport: "21", to: "10.0.1.9")],
    ),"#,
        );
    let cfg = Config::parse(&text, "fuzz").expect("default config");
    Firewall::new(&cfg)
}
