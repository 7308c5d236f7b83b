//! The tunfw command: run the firewall, check a config, query and steer a
//! running one, import iptables rules, print the man page and completions.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use tunfw::config::{Config, ConfigError, DEFAULT_CONFIG_NAME};
use tunfw::control;
use tunfw::device::TunDevice;
use tunfw::event_loop::{ConfigSource, EventLoop};

/// A userspace stateful firewall and router between two TUN devices, with
/// Linux conntrack semantics.
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
    /// Control socket path ("none" to disable); default: the config's `control`, else /run/tunfw.sock.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// After opening the devices and the socket, drop to this user (and its group).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// TUN offloads (virtio-net header, checksum offload, TSO/USO super-packets);
    /// default: the config's `offload`, else on.
    #[arg(long, value_name = "on|off")]
    offload: Option<OnOff>,
    /// Benchmarks only: relay packets between the devices with no tracking and
    /// no rules (the floor of the TUN path). Not a firewall.
    #[arg(long, hide_short_help = true)]
    passthrough: bool,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

/// A switch.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Query or steer a running tunfw through its control socket.
    Ctl {
        /// Control socket path.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control: PathBuf,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
        /// What to do.
        #[command(subcommand)]
        what: CtlCommand,
    },
    /// Translate iptables commands or iptables-save output into a tunfw config (stdout).
    ImportIptables {
        /// The iptables file ("-" for standard input).
        file: PathBuf,
    },
    /// Print the man page (roff) on standard output.
    Man,
    /// Print shell completions on standard output.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Flow filters, as conntrack -L's.
#[derive(clap::Args, Debug, Clone, Default)]
struct FilterArgs {
    /// Protocol: tcp, udp, icmp or a number.
    #[arg(long, short = 'p')]
    proto: Option<String>,
    /// TCP state (ESTABLISHED, TIME_WAIT, ...), or ASSURED / UNREPLIED.
    #[arg(long)]
    state: Option<String>,
    /// An address on either end.
    #[arg(long)]
    addr: Option<String>,
    /// A port on either end.
    #[arg(long)]
    port: Option<u16>,
}

impl FilterArgs {
    fn words(&self) -> String {
        let mut w = Vec::new();
        if let Some(p) = &self.proto {
            w.push(format!("proto={p}"));
        }
        if let Some(s) = &self.state {
            w.push(format!("state={s}"));
        }
        if let Some(a) = &self.addr {
            w.push(format!("addr={a}"));
        }
        if let Some(p) = self.port {
            w.push(format!("port={p}"));
        }
        w.join(" ")
    }
}

#[derive(Subcommand, Debug, Clone)]
enum CtlCommand {
    /// Counters: packets, drops and INVALIDs by reason, table and expectation statistics.
    Stats,
    /// The connection tracking table (like conntrack -L), optionally filtered.
    Flows(FilterArgs),
    /// Pending expectations (data connections announced by helpers).
    Expectations,
    /// Rules and policies with packet and byte counters (like iptables -L -v).
    Rules,
    /// Remove every flow and expectation.
    Flush,
    /// Remove the flows matching a filter.
    Kill(FilterArgs),
    /// Reload the config tunfw started with, or FILE; a bad config changes nothing.
    Reload {
        /// The new config file.
        file: Option<PathBuf>,
    },
    /// Print flow events (NEW, UPDATE, DESTROY) as they happen, until interrupted.
    Events,
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

    if cli.command.is_some() {
        // The subcommands print to stdout, often into `| grep -q` or `| head`:
        // a reader that goes away ends them quietly, as it does cat or ls
        // (Rust ignores SIGPIPE, and println! would panic on EPIPE). The
        // daemon keeps SIGPIPE ignored: its socket writes handle EPIPE.
        // SAFETY: setting a signal's disposition to the default has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match cli.command {
        Some(Command::Ctl {
            control,
            json,
            what,
        }) => return ctl(&control, json, what),
        Some(Command::ImportIptables { file }) => return import(&file),
        Some(Command::Man) => {
            let mut out = std::io::stdout();
            return match clap_mangen::Man::new(Cli::command()).render(&mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tunfw: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "tunfw", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        None => {}
    }

    let (config, source, config_name) = match load_config(cli.config.as_ref()) {
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
        eprintln!("tunfw: --lan NAME and --wan NAME are required (or --check, or a subcommand); see --help");
        return ExitCode::from(2);
    };
    if lan == wan {
        eprintln!("tunfw: --lan and --wan must name different devices");
        return ExitCode::from(2);
    }
    let user = match cli
        .user
        .as_deref()
        .map(tunfw::privilege::lookup)
        .transpose()
    {
        Ok(u) => u,
        Err(e) => {
            eprintln!("tunfw: --user: {e}");
            return ExitCode::from(2);
        }
    };
    let control_path = cli
        .control
        .clone()
        .or_else(|| config.control.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_PATH));
    let control_path = (control_path.as_os_str() != "none").then_some(control_path);
    let offload = cli.offload.map_or(config.offload, |o| o == OnOff::On);
    let open = |name: &str| {
        TunDevice::open(name, offload).map_err(|e| {
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
    let mut event_loop =
        match EventLoop::new(lan_dev, wan_dev, &config, source, control_path.clone()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tunfw: {e}");
                return ExitCode::from(1);
            }
        };
    if cli.passthrough {
        log::warn!("passthrough mode: packets are relayed with no tracking and no rules");
        event_loop.set_passthrough(true);
    }
    if let Some(user) = user {
        if let Err(e) = tunfw::privilege::drop_to(user, event_loop.control_path()) {
            eprintln!(
                "tunfw: cannot drop privileges to uid {} gid {}: {e}",
                user.uid, user.gid
            );
            return ExitCode::from(1);
        }
    }
    log::info!(
        "forwarding lan={lan} <-> wan={wan}; config {config_name}; offloads {}; control {}; uid {}",
        event_loop.offloads().describe(),
        control_path
            .as_ref()
            .map_or("off".to_string(), |p| p.display().to_string()),
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() }
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

fn load_config(path: Option<&PathBuf>) -> Result<(Config, ConfigSource, String), ConfigError> {
    match path {
        Some(p) => Ok((
            Config::load(p)?,
            ConfigSource::File(p.clone()),
            p.display().to_string(),
        )),
        None => Ok((
            Config::embedded_default()?,
            ConfigSource::Embedded,
            DEFAULT_CONFIG_NAME.to_string(),
        )),
    }
}

fn import(file: &Path) -> ExitCode {
    let (text, name) = if file.as_os_str() == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            eprintln!("tunfw import-iptables: {e}");
            return ExitCode::from(1);
        }
        (s, "<stdin>".to_string())
    } else {
        match std::fs::read_to_string(file) {
            Ok(s) => (s, file.display().to_string()),
            Err(e) => {
                eprintln!("tunfw import-iptables: {}: {e}", file.display());
                return ExitCode::from(1);
            }
        }
    };
    match tunfw::import::translate(&text, &name) {
        Ok(ron) => {
            // The output must itself be a valid config.
            if let Err(e) = Config::parse(&ron, "<imported>") {
                eprintln!("tunfw import-iptables: {name}: the translation does not validate: {e}");
                return ExitCode::from(2);
            }
            print!("{ron}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}:{}: {}", e.line, e.message);
            ExitCode::from(2)
        }
    }
}

fn ctl(path: &Path, json: bool, what: CtlCommand) -> ExitCode {
    let request = match &what {
        CtlCommand::Stats => "stats".to_string(),
        CtlCommand::Flows(f) => format!("flows {}", f.words()),
        CtlCommand::Expectations => "expectations".to_string(),
        CtlCommand::Rules => "rules".to_string(),
        CtlCommand::Flush => "flush".to_string(),
        CtlCommand::Kill(f) => format!("kill {}", f.words()),
        CtlCommand::Reload { file } => match file {
            // The daemon resolves the path: make it absolute here.
            Some(f) => format!(
                "reload {}",
                std::path::absolute(f)
                    .unwrap_or_else(|_| f.clone())
                    .display()
            ),
            None => "reload".to_string(),
        },
        CtlCommand::Events => return events(path),
    };
    let value = match control::query(path, &request) {
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
        CtlCommand::Stats => {
            if let Some(map) = value.as_object() {
                for (k, v) in map {
                    println!("{k} {v}");
                }
            }
        }
        CtlCommand::Flows(_) => {
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
        CtlCommand::Expectations => {
            let list: Vec<tunfw::report::ExpectationView> =
                serde_json::from_value(value).unwrap_or_default();
            for e in &list {
                println!("{:>5}s  {}  master {}", e.timeout, e.expected, e.master);
            }
            println!("{} expectations", list.len());
        }
        CtlCommand::Rules => {
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
        CtlCommand::Flush | CtlCommand::Kill(_) => {
            println!("{} flows removed", value["removed"]);
        }
        CtlCommand::Reload { .. } => {
            let s = &value["ok"];
            println!(
                "reloaded: {} rules, {} rule counters carried over, {} flows kept, {} removed",
                s["rules"], s["counters_carried"], s["flows_kept"], s["flows_removed"]
            );
        }
        CtlCommand::Events => {}
    }
    ExitCode::SUCCESS
}

fn events(path: &Path) -> ExitCode {
    let mut stream = match control::connect(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tunfw ctl: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = stream.write_all(b"events\n") {
        eprintln!("tunfw ctl: {e}");
        return ExitCode::from(1);
    }
    let stdout = std::io::stdout();
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"error\"") {
            eprintln!("tunfw ctl: {line}");
            return ExitCode::from(1);
        }
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}
