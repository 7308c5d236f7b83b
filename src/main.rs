//! The tunfw command: run the firewall, check a config, or query a running one.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use tunfw::config::{Config, ConfigError, DEFAULT_CONFIG_NAME};
use tunfw::control;
use tunfw::device::TunDevice;
use tunfw::event_loop::EventLoop;
use tunfw::filter::Firewall;

/// A userspace stateful firewall and router between two TUN devices.
#[derive(Parser, Debug)]
#[command(name = "tunfw", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    /// LAN-side TUN device (packets from it travel outbound).
    #[arg(long, value_name = "NAME")]
    lan: Option<String>,
    /// WAN-side TUN device (packets from it travel inbound).
    #[arg(long, value_name = "NAME")]
    wan: Option<String>,
    /// Configuration file (RON); without it the embedded default is used.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (needs no devices and no privilege).
    #[arg(long)]
    check: bool,
    /// Control socket path ("none" to disable).
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    control: PathBuf,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Query a running tunfw through its control socket.
    Ctl {
        /// Control socket path.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control: PathBuf,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
        /// What to show.
        #[command(subcommand)]
        what: CtlWhat,
    },
}

#[derive(Subcommand, Debug, Clone, Copy)]
enum CtlWhat {
    /// Counters: packets, drops and INVALIDs by reason, table statistics.
    Stats,
    /// The connection tracking table.
    Flows,
    /// Rules and policies with packet and byte counters.
    Rules,
    /// Pending expectations (data connections announced by helpers).
    Expectations,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();

    if let Some(Command::Ctl {
        control,
        json,
        what,
    }) = cli.command
    {
        return ctl(&control, json, what);
    }

    let (config, config_name) = match load_config(cli.config.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!(
            "{config_name}: ok ({} outbound rules, policy {:?}; {} inbound rules, policy {:?}; conntrack max {})",
            config.outbound.rules.len(),
            config.outbound.policy,
            config.inbound.rules.len(),
            config.inbound.policy,
            config.conntrack.max
        );
        return ExitCode::SUCCESS;
    }
    let (Some(lan), Some(wan)) = (cli.lan.as_deref(), cli.wan.as_deref()) else {
        eprintln!("tunfw: --lan NAME and --wan NAME are required (or --check, or ctl); see --help");
        return ExitCode::from(2);
    };
    if lan == wan {
        eprintln!("tunfw: --lan and --wan must name different devices");
        return ExitCode::from(2);
    }
    let open = |name: &str| {
        TunDevice::open(name).map_err(|e| {
            eprintln!("tunfw: {e}");
            ExitCode::from(1)
        })
    };
    let lan_dev = match open(lan) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let wan_dev = match open(wan) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let control_path = (cli.control.as_os_str() != "none").then(|| cli.control.clone());
    let firewall = Firewall::new(&config);
    let mut event_loop = match EventLoop::new(lan_dev, wan_dev, firewall, control_path.clone()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tunfw: {e}");
            return ExitCode::from(1);
        }
    };
    log::info!(
        "forwarding lan={lan} <-> wan={wan}; config {config_name}; control {}",
        control_path
            .as_ref()
            .map_or("off".to_string(), |p| p.display().to_string())
    );
    match event_loop.run() {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tunfw: event loop failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<(Config, String), ConfigError> {
    match path {
        Some(p) => Ok((Config::load(p)?, p.display().to_string())),
        None => Ok((Config::embedded_default()?, DEFAULT_CONFIG_NAME.to_string())),
    }
}

fn ctl(path: &std::path::Path, json: bool, what: CtlWhat) -> ExitCode {
    let request = match what {
        CtlWhat::Stats => "stats",
        CtlWhat::Flows => "flows",
        CtlWhat::Rules => "rules",
        CtlWhat::Expectations => "expectations",
    };
    let value = match control::query(path, request) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tunfw ctl: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        println!("{value}");
        return ExitCode::SUCCESS;
    }
    match what {
        CtlWhat::Stats => {
            if let Some(map) = value.as_object() {
                for (k, v) in map {
                    println!("{k} {v}");
                }
            }
        }
        CtlWhat::Flows => {
            let flows: Vec<tunfw::report::FlowView> =
                serde_json::from_value(value).unwrap_or_default();
            for f in &flows {
                let mut flags = String::new();
                if f.unreplied {
                    flags += " [UNREPLIED]";
                }
                if f.assured {
                    flags += " [ASSURED]";
                }
                println!(
                    "{:<5} {:<12} {:>7}s  {}  reply {}  packets={}/{} bytes={}/{}{flags}",
                    f.proto,
                    f.state,
                    f.timeout,
                    f.original,
                    f.reply,
                    f.packets[0],
                    f.packets[1],
                    f.bytes[0],
                    f.bytes[1]
                );
            }
            println!("{} flows", flows.len());
        }
        CtlWhat::Expectations => {
            let list: Vec<tunfw::report::ExpectationView> =
                serde_json::from_value(value).unwrap_or_default();
            for e in &list {
                println!("{:>5}s  {}  master {}", e.timeout, e.expected, e.master);
            }
            println!("{} expectations", list.len());
        }
        CtlWhat::Rules => {
            let rules: Vec<tunfw::report::RuleView> =
                serde_json::from_value(value).unwrap_or_default();
            println!(
                "{:<9} {:>3} {:>10} {:>12}  {:<22} rule",
                "direction", "#", "packets", "bytes", "name"
            );
            for r in &rules {
                println!(
                    "{:<9} {:>3} {:>10} {:>12}  {:<22} {}",
                    r.direction, r.number, r.packets, r.bytes, r.name, r.rule
                );
            }
        }
    }
    ExitCode::SUCCESS
}
