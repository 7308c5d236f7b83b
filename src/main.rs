//! The tunfw command: run the firewall, check a config, query and steer a
//! running one, import iptables rules, print the man page and completions.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use tunfw::config::{Config, ConfigError};
use tunfw::control;
use tunfw::device::TunDevice;
use tunfw::event_loop::{ConfigSource, EventLoop};
use tunfw::import::Input;
use tunfw::matchers::Family;

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
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100, [::1]:9100);
    /// default: the config's `metrics`, else none.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// State file: restore flows and expectations from it at start (if it
    /// exists; a corrupt one is refused and tunfw starts empty) and save
    /// them to it at SIGTERM or SIGINT; default: the config's `state_file`.
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
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
    /// Translate iptables and ip6tables commands, or iptables-save and
    /// ip6tables-save output, into one tunfw config (stdout).
    ///
    /// FILE's lines are IPv4 (iptables) unless they start with `ip6tables`;
    /// every line of the -6 file is IPv6 unless it starts with `iptables`.
    /// So `tunfw import-iptables rules.v4 -6 rules.v6` reads the two save
    /// files, and one file of commands may mix iptables and ip6tables
    /// lines. An imported rule applies to its own family only (`family:
    /// Ipv4` or `family: Ipv6` where its addresses or ICMP protocol do not
    /// already say so); a rule both families have at the same place in
    /// their order is written once for both. Where the chain policies of
    /// the two differ, the chain keeps IPv4's and a last rule gives IPv6
    /// its own.
    #[command(verbatim_doc_comment)]
    ImportIptables {
        /// iptables commands or iptables-save output ("-" for standard input).
        #[arg(required_unless_present = "ipv6", value_name = "FILE")]
        file: Option<PathBuf>,
        /// ip6tables commands or ip6tables-save output ("-" for standard input).
        #[arg(short = '6', long = "ipv6", value_name = "FILE")]
        ipv6: Option<PathBuf>,
    },
    /// Say which rule decides a packet described on the command line, and
    /// why, with no device and no privilege (test a ruleset before
    /// deploying it).
    ///
    /// PACKET: PROTO SRC -> DST [FLAGS] [type N [code M] | ICMP-NAME] [id N]
    /// [ttl N] from lan|wan, e.g. `tcp 10.0.0.2:5555 -> 192.0.2.1:80 syn
    /// from lan`, `udp [fd00::2]:5353 -> [fd00:1::1]:53 from lan`, `icmp
    /// 192.0.2.1 -> 10.0.0.2 echo-request from wan`. The packet is built
    /// and decided by the packet path (conntrack, destination NAT, the
    /// chain); each rule evaluated is shown with the match it failed.
    /// Exit code: 0 accepted, 1 dropped or rejected, 2 bad config or
    /// description.
    #[command(verbatim_doc_comment)]
    Explain {
        /// Configuration file (RON); without it the embedded default is used.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// The conntrack state: new (default: the packet alone), established
        /// (its flow is started from its side and answered first), reply
        /// (the packet answers a flow the other side started), or related,
        /// invalid, untracked (given to the chain as is, without conntrack
        /// and NAT).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        /// The packet, as words.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true, value_name = "PACKET")]
        packet: Vec<String>,
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
    /// Protocol: tcp, udp, icmp, icmpv6 or a number.
    #[arg(long, short = 'p')]
    proto: Option<String>,
    /// IP family: 4 or 6 (conntrack -f ipv4 / ipv6).
    #[arg(long, short = 'f')]
    family: Option<String>,
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
        if let Some(f) = &self.family {
            w.push(format!("family={f}"));
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
    /// Reload the config tunfw started with, or FILE (this once: later reloads
    /// and SIGHUP read the start-up config again); a bad config changes nothing.
    Reload {
        /// The config file to apply once.
        file: Option<PathBuf>,
    },
    /// Every counter and gauge in the Prometheus text format (what --metrics serves).
    Metrics,
    /// Print flow events (NEW, UPDATE, DESTROY) as they happen, until interrupted; a
    /// {"event":"LOST","lost":N} line counts events dropped while this reader was behind.
    Events,
    /// Trace the live packets matching a filter (its state: NEW, ESTABLISHED,
    /// RELATED, INVALID, UNTRACKED), until interrupted: per packet its side,
    /// tuple (and what the rules saw after NAT), conntrack state (and why,
    /// for INVALID), its flow before and after, each rule evaluated and the
    /// verdict. At most 100 packets a second are shown; a "N not shown"
    /// line counts the others.
    Trace(FilterArgs),
    /// Save the flows and expectations to FILE (written by the daemon:
    /// FILE.tmp, fsync, rename), for `--state-file FILE` to restore; the
    /// daemon pauses while it writes (about a second per million flows).
    Save {
        /// The state file to write.
        file: PathBuf,
    },
    /// Change or list a named set at runtime, without a reload: `set add NAME
    /// ELEMENT... [timeout SECONDS]`, `set del NAME ELEMENT...`, `set list [NAME]`,
    /// `set flush NAME` (elements: addresses or CIDRs, ports or ranges).
    Set {
        /// add, del, list or flush, then the set's name and elements.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match cli.command {
        Some(command) => subcommand(command),
        None if cli.check => check(cli.config.as_ref()),
        None => run(&cli),
    }
}

/// env_logger at info, debug (-v) or trace (-vv) unless RUST_LOG says otherwise.
fn init_logging(verbose: u8) {
    let default_level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();
}

fn subcommand(command: Command) -> ExitCode {
    // The subcommands print to stdout, often into `| grep -q` or `| head`:
    // a reader that goes away ends them quietly, as it does cat or ls
    // (Rust ignores SIGPIPE, and println! would panic on EPIPE). The
    // daemon keeps SIGPIPE ignored: its socket writes handle EPIPE.
    // SAFETY: setting a signal's disposition to the default has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match command {
        Command::Ctl {
            control,
            json,
            what,
        } => ctl(&control, json, what),
        Command::ImportIptables { file, ipv6 } => import(file.as_deref(), ipv6.as_deref()),
        Command::Explain {
            config,
            state,
            packet,
        } => explain(config.as_ref(), state.as_deref(), &packet),
        Command::Man => man(),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tunfw", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// `tunfw explain`: the rule that decides the described packet.
fn explain(path: Option<&PathBuf>, state: Option<&str>, words: &[String]) -> ExitCode {
    use tunfw::explain::{Description, StateWish};
    let (config, _, _) = match load_config(path) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    let words: Vec<&str> = words.iter().flat_map(|w| w.split_whitespace()).collect();
    let description = match Description::parse(&words) {
        Ok(d) => d,
        Err(e) => return fail(2, format_args!("tunfw explain: {e}")),
    };
    let wish = match state.map(StateWish::parse).transpose() {
        Ok(w) => w.unwrap_or(StateWish::Table),
        Err(e) => return fail(2, format_args!("tunfw explain: {e}")),
    };
    let explanation = tunfw::explain::explain(&config, &description, wish);
    print!("{}", explanation.render());
    ExitCode::from(explanation.exit_code())
}

/// `tunfw man`: the man page, generated from the argument definitions.
fn man() -> ExitCode {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(1, format_args!("tunfw: {e}")),
    }
}

/// Print `message` on stderr; the code to exit with.
fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{message}");
    ExitCode::from(code)
}

/// `--check`: load and validate the config, print what it holds.
fn check(path: Option<&PathBuf>) -> ExitCode {
    let (config, _, config_name) = match load_config(path) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    println!(
        "{config_name}: ok ({} outbound rules, policy {:?}; {} inbound rules, policy {:?}; conntrack max {}; tables at most {})",
        config.outbound.rules.len(),
        config.outbound.policy,
        config.inbound.rules.len(),
        config.inbound.policy,
        config.conntrack.max,
        config.table_memory().total_human()
    );
    ExitCode::SUCCESS
}

/// Run the firewall between the two devices until SIGINT or SIGTERM.
fn run(cli: &Cli) -> ExitCode {
    let mut event_loop = match start(cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    match event_loop.run() {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, format_args!("tunfw: event loop failed: {e}")),
    }
}

/// Everything before the first packet: config, devices, control socket,
/// privileges. An `Err` has been reported on stderr already.
fn start(cli: &Cli) -> Result<EventLoop, ExitCode> {
    let (config, source, config_name) = load_config(cli.config.as_ref()).map_err(|e| fail(2, e))?;
    let (lan, wan) = device_names(cli)?;
    let user = cli
        .user
        .as_deref()
        .map(tunfw::privilege::lookup)
        .transpose()
        .map_err(|e| fail(2, format_args!("tunfw: --user: {e}")))?;
    let control_path = control_path(cli, &config);
    let offload = cli.offload.map_or(config.offload, |o| o == OnOff::On);
    let open = |name: &str| {
        TunDevice::open(name, offload).map_err(|e| fail(1, format_args!("tunfw: {e}")))
    };
    let (lan_dev, wan_dev) = (open(lan)?, open(wan)?);
    for dev in [&lan_dev, &wan_dev] {
        if let Err(e) = dev.set_queue_len(config.queue_len) {
            log::warn!(
                "cannot set {}'s transmit queue to {} packets ({e}); it keeps the kernel's",
                dev.name(),
                config.queue_len
            );
        }
    }
    let mut event_loop = EventLoop::new(lan_dev, wan_dev, &config, source, control_path.clone())
        .map_err(|e| fail(1, format_args!("tunfw: {e}")))?;
    let metrics = match cli.metrics.or(config.metrics) {
        Some(addr) => Some(
            event_loop
                .enable_metrics(addr)
                .map_err(|e| fail(1, format_args!("tunfw: {e}")))?,
        ),
        None => None,
    };
    if let Some(path) = cli
        .state_file
        .clone()
        .or_else(|| config.state_file.as_ref().map(PathBuf::from))
    {
        event_loop.use_state_file(path);
    }
    if cli.passthrough {
        log::warn!("passthrough mode: packets are relayed with no tracking and no rules");
        event_loop.set_passthrough(true);
    }
    if let Some(user) = user {
        tunfw::privilege::drop_to(user, event_loop.control_path()).map_err(|e| {
            let (uid, gid) = (user.uid, user.gid);
            fail(
                1,
                format_args!("tunfw: cannot drop privileges to uid {uid} gid {gid}: {e}"),
            )
        })?;
    }
    log::info!(
        "forwarding lan={lan} <-> wan={wan}; config {config_name}; offloads {}; queues {}+{}; control {}; metrics {}; uid {}",
        event_loop.offloads().describe(),
        event_loop.queue_counts()[0],
        event_loop.queue_counts()[1],
        control_path
            .as_ref()
            .map_or("off".to_string(), |p| p.display().to_string()),
        metrics.map_or("off".to_string(), |a| format!("http://{a}/metrics")),
        // SAFETY: getuid has no preconditions.
        unsafe { libc::getuid() }
    );
    Ok(event_loop)
}

/// `--lan` and `--wan`, both given and different.
fn device_names(cli: &Cli) -> Result<(&str, &str), ExitCode> {
    let (Some(lan), Some(wan)) = (cli.lan.as_deref(), cli.wan.as_deref()) else {
        return Err(fail(2, "tunfw: --lan NAME and --wan NAME are required (or --check, or a subcommand); see --help"));
    };
    if lan == wan {
        return Err(fail(
            2,
            "tunfw: --lan and --wan must name different devices",
        ));
    }
    Ok((lan, wan))
}

/// The control socket: `--control`, else the config's, else the default;
/// `None` for "none".
fn control_path(cli: &Cli, config: &Config) -> Option<PathBuf> {
    let path = cli
        .control
        .clone()
        .or_else(|| config.control.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_PATH));
    (path.as_os_str() != "none").then_some(path)
}

fn load_config(path: Option<&PathBuf>) -> Result<(Config, ConfigSource, String), ConfigError> {
    let source = path.map_or(ConfigSource::Embedded, |p| ConfigSource::File(p.clone()));
    let name = source.name();
    Ok((source.load()?, source, name))
}

/// Read one import input: a file or standard input, with the limits of a
/// config file; its name for messages.
fn import_text(file: &Path) -> Result<(String, String), ConfigError> {
    if file.as_os_str() == "-" {
        let name = "<stdin>".to_string();
        let text = tunfw::config::read_text(std::io::stdin().lock(), &name)?;
        Ok((text, name))
    } else {
        let text = tunfw::config::read_text_file(file)?;
        Ok((text, file.display().to_string()))
    }
}

fn import(file: Option<&Path>, ipv6: Option<&Path>) -> ExitCode {
    if file.is_some_and(|f| f.as_os_str() == "-") && ipv6.is_some_and(|f| f.as_os_str() == "-") {
        return fail(
            2,
            format_args!(
                "tunfw import-iptables: standard input (\"-\") can be only one of FILE and -6 FILE"
            ),
        );
    }
    let mut texts = Vec::new();
    for (path, family) in [(file, Family::V4), (ipv6, Family::V6)] {
        let Some(path) = path else { continue };
        match import_text(path) {
            Ok((text, name)) => texts.push((text, name, family)),
            Err(e) => return fail(1, format_args!("tunfw import-iptables: {e}")),
        }
    }
    let inputs: Vec<Input<'_>> = texts
        .iter()
        .map(|(text, name, family)| Input {
            text,
            name,
            family: *family,
        })
        .collect();
    let names: Vec<&str> = inputs.iter().map(|i| i.name).collect();
    let names = names.join(" and ");
    match tunfw::import::translate_inputs(&inputs) {
        Ok(ron) => {
            // The output must itself be a valid config.
            if let Err(e) = Config::parse(&ron, "<imported>") {
                eprintln!("tunfw import-iptables: {names}: the translation does not validate: {e}");
                return ExitCode::from(2);
            }
            print!("{ron}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}:{}: {}", e.file, e.line, e.message);
            ExitCode::from(2)
        }
    }
}

fn ctl(path: &Path, json: bool, what: CtlCommand) -> ExitCode {
    if let CtlCommand::Trace(f) = &what {
        return trace(path, &format!("trace {}", f.words()), json);
    }
    let Some(request) = what.request() else {
        return events(path);
    };
    let value = match control::query(path, &request) {
        Ok(v) => v,
        Err(e) => return fail(1, format_args!("tunfw ctl: {e}")),
    };
    if json {
        println!("{value}");
        return ExitCode::SUCCESS;
    }
    match what {
        CtlCommand::Stats => print_stats(&value),
        CtlCommand::Metrics => print!("{}", value["metrics"].as_str().unwrap_or_default()),
        CtlCommand::Flows(_) => print_flows(value),
        CtlCommand::Expectations => print_expectations(value),
        CtlCommand::Rules => print_rules(value),
        CtlCommand::Flush | CtlCommand::Kill(_) => {
            println!("{} flows removed", value["removed"]);
        }
        CtlCommand::Reload { .. } => {
            let s = &value["ok"];
            println!(
                "reloaded: {} rules, {} rule counters carried over, {} flows kept, {} removed; config {}",
                s["rules"],
                s["counters_carried"],
                s["flows_kept"],
                s["flows_removed"],
                value["config"].as_str().unwrap_or("?")
            );
        }
        CtlCommand::Events | CtlCommand::Trace(_) => {}
        CtlCommand::Save { .. } => {
            let s = &value["ok"];
            println!(
                "saved {} flows and {} expectations ({} bytes) to {} in {} ms",
                s["flows"],
                s["expectations"],
                s["bytes"],
                value["file"].as_str().unwrap_or("?"),
                value["ms"]
            );
        }
        CtlCommand::Set { .. } => print_set(&value),
    }
    ExitCode::SUCCESS
}

/// `ctl set`: what changed, or the listing (one element per line, with its
/// remaining timeout; or one set per line with its size).
fn print_set(value: &serde_json::Value) {
    if let Some(n) = value.get("added") {
        println!("{n} added");
    } else if let Some(n) = value.get("removed") {
        println!("{n} removed");
    } else if let Some(elements) = value.get("elements").and_then(|e| e.as_array()) {
        for e in elements {
            let element = e["element"].as_str().unwrap_or("?");
            let origin = if e["runtime"].as_bool() == Some(true) {
                "runtime"
            } else {
                "config"
            };
            match e["expires_in"].as_u64() {
                Some(s) => println!("{element} {origin} timeout {s}"),
                None => println!("{element} {origin}"),
            }
        }
        println!(
            "{} elements in {}",
            elements.len(),
            value["name"].as_str().unwrap_or("?")
        );
    } else if let Some(sets) = value.as_array() {
        for s in sets {
            println!(
                "{} {} {}",
                s["name"].as_str().unwrap_or("?"),
                s["kind"].as_str().unwrap_or("?"),
                s["elements"]
            );
        }
    }
}

impl CtlCommand {
    /// The control socket request line; `None` for `events`, a stream.
    fn request(&self) -> Option<String> {
        Some(match self {
            CtlCommand::Stats => "stats".to_string(),
            CtlCommand::Flows(f) => format!("flows {}", f.words()),
            CtlCommand::Expectations => "expectations".to_string(),
            CtlCommand::Rules => "rules".to_string(),
            CtlCommand::Metrics => "metrics".to_string(),
            CtlCommand::Flush => "flush".to_string(),
            CtlCommand::Kill(f) => format!("kill {}", f.words()),
            // The daemon resolves the path: make it absolute here.
            CtlCommand::Reload { file: Some(f) } => format!(
                "reload {}",
                std::path::absolute(f)
                    .unwrap_or_else(|_| f.clone())
                    .display()
            ),
            CtlCommand::Reload { file: None } => "reload".to_string(),
            CtlCommand::Events | CtlCommand::Trace(_) => return None,
            CtlCommand::Save { file } => format!(
                "save {}",
                std::path::absolute(file)
                    .unwrap_or_else(|_| file.clone())
                    .display()
            ),
            CtlCommand::Set { words } => format!("set {}", words.join(" ")),
        })
    }
}

/// `ctl stats`: one `name value` line per counter.
fn print_stats(value: &serde_json::Value) {
    if let Some(map) = value.as_object() {
        for (k, v) in map {
            println!("{k} {v}");
        }
    }
}

/// `ctl flows`: one line per flow, as conntrack -L, then the count.
fn print_flows(value: serde_json::Value) {
    let flows: Vec<tunfw::report::FlowView> = serde_json::from_value(value).unwrap_or_default();
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

/// `ctl expectations`: one line per expectation, then the count.
fn print_expectations(value: serde_json::Value) {
    let list: Vec<tunfw::report::ExpectationView> =
        serde_json::from_value(value).unwrap_or_default();
    for e in &list {
        println!("{:>5}s  {}  master {}", e.timeout, e.expected, e.master);
    }
    println!("{} expectations", list.len());
}

/// `ctl rules`: a table of rules and policies with their counters.
fn print_rules(value: serde_json::Value) {
    let rules: Vec<tunfw::report::RuleView> = serde_json::from_value(value).unwrap_or_default();
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

fn events(path: &Path) -> ExitCode {
    let mut wait = std::time::Duration::from_millis(10);
    for _ in 0..control::CLIENT_RETRIES {
        match subscribe(path, "events") {
            Err(e) if control::turned_away(&e) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            done => return print_events(done),
        }
    }
    print_events(subscribe(path, "events"))
}

/// `ctl trace FILTER`: print the traced packets as they come.
fn trace(path: &Path, request: &str, json: bool) -> ExitCode {
    let (reader, first) = match subscribe(path, request.trim_end()) {
        Ok(s) => s,
        Err(e) => return fail(1, format_args!("tunfw ctl: {e}")),
    };
    let stdout = std::io::stdout();
    for line in first.into_iter().map(Ok).chain(reader.lines()) {
        let Ok(line) = line else { break };
        let value: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(e) = value["error"].as_str() {
            return fail(1, format_args!("tunfw ctl: {e}"));
        }
        let mut text = String::new();
        if json {
            text = line;
        } else if let Some(t) = value["trace"].as_str() {
            text += t;
            for rule in value["rules"].as_array().into_iter().flatten() {
                text += "\n  ";
                text += rule.as_str().unwrap_or("");
            }
        } else if let Some(n) = value["not_shown"].as_u64() {
            text = format!("({n} matching packets not shown: at most 100 a second)");
        } else if let Some(n) = lost_events(&line) {
            text = format!("({n} traces lost: this reader fell behind)");
        } else {
            text = line;
        }
        let mut out = stdout.lock();
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Connect and ask for events; the stream and its first line (`None` at
/// the end of the stream). An error line is an error.
fn subscribe(
    path: &Path,
    request: &str,
) -> std::io::Result<(BufReader<UnixStream>, Option<String>)> {
    let mut stream = control::connect(path)?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok((reader, None));
    }
    let first = first.trim_end_matches('\n').to_string();
    if first.contains("\"error\"") {
        let value: serde_json::Value = serde_json::from_str(&first).unwrap_or_default();
        let message = value["error"].as_str().unwrap_or(&first).to_string();
        return Err(std::io::Error::other(message));
    }
    Ok((reader, Some(first)))
}

/// `ctl events`: print event lines as they come, until interrupted or the
/// server hangs up.
fn print_events(subscribed: std::io::Result<(BufReader<UnixStream>, Option<String>)>) -> ExitCode {
    let (reader, first) = match subscribed {
        Ok(s) => s,
        Err(e) => return fail(1, format_args!("tunfw ctl: {e}")),
    };
    let stdout = std::io::stdout();
    for line in first.into_iter().map(Ok).chain(reader.lines()) {
        let Ok(line) = line else { break };
        if line.contains("\"error\"") {
            eprintln!("tunfw ctl: {line}");
            return ExitCode::from(1);
        }
        if let Some(lost) = lost_events(&line) {
            // The JSON line stays on stdout for programs; people get a note.
            eprintln!(
                "tunfw ctl: {lost} events lost: this reader fell more than {} KiB behind",
                control::MAX_BACKLOG / 1024
            );
        }
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// The count of a `{"event":"LOST","lost":N}` line (see `control::lost_line`).
fn lost_events(line: &str) -> Option<u64> {
    if !line.contains("\"LOST\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["event"] == "LOST").then(|| value["lost"].as_u64())?
}
