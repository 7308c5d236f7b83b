//! The event loop: one thread, one mio `Poll` over both TUN devices, the
//! signal pipe and the control socket. It is a thin shell around
//! [`Firewall::process`]: read a packet, ask for a verdict, write it out.
//!
//! Each device has one queue or [`crate::device::steering::QUEUES`] (see
//! [`crate::device`]: the kernel spreads flows over them by a keyed hash,
//! fragments in a queue of their own). The loop runs in turns. In each turn
//! every queue with packets waiting gets a budget of [`BUDGET`] packets (the
//! first queue rotates between turns), then the control socket and signals
//! are served, and the conntrack timers run when due. A queue whose budget
//! ran out is still known to be readable (mio is edge-triggered and will not
//! say so again), so the next turn polls without waiting. A flood in one
//! queue therefore delays the other queues, the timers and the control
//! socket by at most one turn (a budget per busy queue), as Linux's NAPI
//! polls each device for at most its weight (64) before the next; and a
//! flood of one flow, however fast, gets one queue's share of the reads
//! while other flows have packets waiting. When neither device has work, the poll
//! timeout is the firewall's next expiry deadline, so an idle tunfw sleeps
//! in `epoll_wait` and uses no CPU. Reloads (SIGHUP,
//! `ctl reload`) parse and validate the whole new config first and swap it in
//! between two packets; a bad config changes nothing.

use std::io;
use std::path::{Path, PathBuf};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::config::{Config, ConfigError, PcapPackets, DEFAULT_CONFIG_NAME};
use crate::conntrack::events::Event;
use crate::control::{
    dispatch, error_answer, Answer, ControlCounters, ControlServer, Dispatch, Request,
    LISTING_FLOWS, LISTING_SLOTS,
};
use crate::device::TunDevice;
use crate::filter::trace::{not_shown_line, TraceOutput};
use crate::filter::{Firewall, ReloadSummary, DEBUG_LINES_PER_SECOND};
use crate::metrics::{self, Census, CENSUS_CHUNK};
use crate::metrics_http::MetricsServer;
use crate::pcap::PcapWriter;
use crate::ratelimit::TokenBucket;
use crate::report::{self, log_line, LoopCounters};
use crate::segment;
use crate::side::Side;
use crate::time::Instant;
use crate::verdict::{Fate, Verdict};
use crate::wire::vnet::{self, VnetHeader};

const SIGNALS: Token = Token(2);
const CONTROL: Token = Token(3);
/// The device queues' tokens: `FIRST_QUEUE + i` for entry `i` of the loop's
/// queue list (at most 2 × [`crate::device::steering::QUEUES`] entries).
const FIRST_QUEUE: usize = 16;
const FIRST_CLIENT: usize = 64;
/// The metrics listener's token; its client slots' tokens start at
/// `FIRST_METRICS_CLIENT` (past the queues', below the control clients').
const METRICS: Token = Token(4);
const FIRST_METRICS_CLIENT: usize = 40;
/// Largest frame read from a TUN device: the virtio-net header and the
/// largest IPv4 or IPv6 packet (a 64 KiB super-packet with offloads; IPv6:
/// 40 + 65,535 bytes), with room to spare.
const MAX_FRAME: usize = 65_536 + 4096;
/// Packets read from one device per turn (see the module documentation):
/// Linux's NAPI weight. At one to a few microseconds a packet, a turn of
/// both devices takes well under a millisecond, so neither side, the
/// timers nor the control socket wait longer than that behind a flood,
/// while a busy device still moves 64 packets (up to 64 super-packets of
/// 64 KiB with offloads) per poll.
pub const BUDGET: u32 = 64;
/// Events kept between two drains while someone subscribes.
const EVENT_RING: usize = 65_536;

/// Where a config comes from: the embedded default or a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// The embedded default.
    Embedded,
    /// A file.
    File(PathBuf),
}

impl ConfigSource {
    /// Read and validate the config ([`Config::load`]: a file is read only
    /// if it is a regular file of at most 1 MiB, and never blocks).
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            ConfigSource::Embedded => Config::embedded_default(),
            ConfigSource::File(p) => Config::load(p),
        }
    }

    /// The name errors and log lines give it: the path as given, or the
    /// embedded default's name.
    pub fn name(&self) -> String {
        match self {
            ConfigSource::Embedded => DEFAULT_CONFIG_NAME.to_string(),
            ConfigSource::File(p) => p.display().to_string(),
        }
    }

    /// What a reload reads when `self` is the config tunfw started with and
    /// `file` the one `ctl reload FILE` names, if any: that file, this once;
    /// otherwise (SIGHUP, a plain `reload`) the start-up config again. A
    /// `reload FILE` never becomes the source of later reloads.
    pub fn for_reload(&self, file: Option<PathBuf>) -> ConfigSource {
        file.map_or_else(|| self.clone(), ConfigSource::File)
    }
}

/// The event loop's packet buffers, allocated once.
struct Buffers {
    /// The frame read from a device.
    packet: Vec<u8>,
    /// An answer (RST, ICMP error): its virtio-net header bytes stay zero.
    answer: Vec<u8>,
    /// One segment of a super-packet being cut.
    segment: Vec<u8>,
}

struct Pcap {
    writer: PcapWriter,
    packets: PcapPackets,
    path: String,
}

/// The running daemon.
pub struct EventLoop {
    poll: Poll,
    devices: [TunDevice; 2],
    fw: Firewall,
    /// The config tunfw started with: what SIGHUP and a plain `reload`
    /// read (see [`ConfigSource::for_reload`]). Never replaced.
    startup: ConfigSource,
    signals: Signals,
    control: Option<ControlServer>,
    pcap: Option<Pcap>,
    started: std::time::Instant,
    /// When trace subscribers were last told of records not shown.
    trace_reported: Instant,
    counters: LoopCounters,
    /// Debug lines about single packets (write errors, uncuttable
    /// super-packets), rate-limited as the firewall's.
    debug_log_limit: TokenBucket,
    passthrough: bool,
    /// Bytes of virtio-net header in front of every frame (0: offloads off).
    header_len: usize,
    /// Every device queue the loop reads, as (side, queue index), in the
    /// order of a turn that starts with the first; LAN and WAN alternate.
    queues: Vec<(Side, usize)>,
    /// The `--metrics` server, if any, and the table census under way for
    /// the scrapes waiting (one [`CENSUS_CHUNK`] a turn).
    metrics: Option<MetricsServer>,
    census: Option<Census>,
    /// Where the table is saved at SIGTERM or SIGINT ([`EventLoop::use_state_file`]).
    state_file: Option<PathBuf>,
}

impl EventLoop {
    /// Set up polling on open devices, signals, the control socket at
    /// `control`, and the pcap file the config names.
    pub fn new(
        lan: TunDevice,
        wan: TunDevice,
        config: &Config,
        source: ConfigSource,
        control: Option<PathBuf>,
    ) -> io::Result<EventLoop> {
        if lan.offloads() != wan.offloads() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "offloads differ: {} has {}, {} has {}",
                    lan.name(),
                    lan.offloads().describe(),
                    wan.name(),
                    wan.offloads().describe()
                ),
            ));
        }
        let header_len = lan.offloads().header_len();
        let poll = Poll::new()?;
        let registry = poll.registry();
        let most = lan.queue_count().max(wan.queue_count());
        let queues: Vec<(Side, usize)> = (0..most)
            .flat_map(|q| [(Side::Lan, q), (Side::Wan, q)])
            .filter(|&(side, q)| q < [&lan, &wan][side.index()].queue_count())
            .collect();
        for (i, &(side, q)) in queues.iter().enumerate() {
            let dev = [&lan, &wan][side.index()];
            if let Some(fd) = dev.queue_fd(q) {
                registry.register(
                    &mut SourceFd(&fd),
                    Token(FIRST_QUEUE + i),
                    Interest::READABLE,
                )?;
            }
        }
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        registry.register(&mut signals, SIGNALS, Interest::READABLE)?;
        let control = match control {
            Some(path) => {
                let mut server = ControlServer::bind(&path, FIRST_CLIENT).map_err(|e| {
                    io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()))
                })?;
                server.register(registry, CONTROL)?;
                Some(server)
            }
            None => None,
        };
        let mut event_loop = EventLoop {
            poll,
            devices: [lan, wan],
            fw: Firewall::new(config),
            startup: source,
            signals,
            control,
            pcap: None,
            started: std::time::Instant::now(),
            trace_reported: Instant::ZERO,
            counters: LoopCounters::default(),
            debug_log_limit: TokenBucket::new(DEBUG_LINES_PER_SECOND, DEBUG_LINES_PER_SECOND),
            passthrough: false,
            header_len,
            queues,
            metrics: None,
            census: None,
            state_file: None,
        };
        for side in Side::BOTH {
            if let Some(mtu) = event_loop.devices[side.index()].mtu() {
                event_loop.fw.set_mtu(side, mtu);
            }
        }
        event_loop.open_pcap(config)?;
        Ok(event_loop)
    }

    fn open_pcap(&mut self, config: &Config) -> io::Result<()> {
        let wanted = config.logging.pcap.as_ref();
        if self.pcap.as_ref().map(|p| &p.path) == wanted.map(|w| &w.path) {
            if let (Some(p), Some(w)) = (self.pcap.as_mut(), wanted) {
                p.packets = w.packets;
            }
            return Ok(());
        }
        self.pcap = match wanted {
            None => None,
            Some(w) => Some(Pcap {
                writer: PcapWriter::create(Path::new(&w.path))
                    .map_err(|e| io::Error::new(e.kind(), format!("pcap file {}: {e}", w.path)))?,
                packets: w.packets,
                path: w.path.clone(),
            }),
        };
        Ok(())
    }

    /// Restore the table from the state file at `path` (before the first
    /// packet; a missing file means none yet), and save it there when a
    /// SIGTERM or SIGINT ends the loop. A file that cannot be read, is
    /// corrupt or foreign is logged as an error and tunfw starts with an
    /// empty table (it does not exit).
    pub fn use_state_file(&mut self, path: PathBuf) {
        let started = std::time::Instant::now();
        let name = path.display();
        let now = self.now();
        match crate::state_file::restore(&mut self.fw, &path, now) {
            Ok(s) => log::info!(
                "state file {name}: restored {} flows and {} expectations in {} ms (saved {:.1} s ago; {} expired meanwhile)",
                s.flows,
                s.expectations,
                started.elapsed().as_millis(),
                s.age_ms as f64 / 1000.0,
                s.expired
            ),
            Err(crate::conntrack::snapshot::RestoreError::Io(e))
                if e.kind() == io::ErrorKind::NotFound =>
            {
                log::info!("state file {name}: none yet, starting with an empty table")
            }
            Err(e) => log::error!(
                "state file {name} refused: {e}; starting with an empty table"
            ),
        }
        self.state_file = Some(path);
    }

    /// Save the table to `path` (blocking the loop while it writes: about
    /// a second per million flows, README "State across restarts").
    fn save_state(&self, path: &Path) -> Result<serde_json::Value, String> {
        let started = std::time::Instant::now();
        match crate::state_file::save(self.fw.conntrack(), path, self.now()) {
            Ok(s) => {
                let ms = started.elapsed().as_millis() as u64;
                log::info!(
                    "state file {}: saved {} flows and {} expectations ({} bytes) in {ms} ms",
                    path.display(),
                    s.flows,
                    s.expectations,
                    s.bytes
                );
                Ok(serde_json::json!({ "ok": s, "file": path.display().to_string(), "ms": ms }))
            }
            Err(e) => {
                log::error!("state file {}: cannot save: {e}", path.display());
                Err(format!("cannot save {}: {e}", path.display()))
            }
        }
    }

    /// Relay packets between the devices without tracking or rules: the
    /// floor of the TUN path, for benchmarks. Not a firewall.
    pub fn set_passthrough(&mut self, on: bool) {
        self.passthrough = on;
    }

    /// Serve `/metrics` on `addr` (see [`crate::metrics_http`]); the
    /// address it listens on (port 0 becomes the one the kernel chose).
    pub fn enable_metrics(
        &mut self,
        addr: std::net::SocketAddr,
    ) -> io::Result<std::net::SocketAddr> {
        let mut server = MetricsServer::bind(addr, FIRST_METRICS_CLIENT)
            .map_err(|e| io::Error::new(e.kind(), format!("metrics address {addr}: {e}")))?;
        server.register(self.poll.registry(), METRICS)?;
        let bound = server.local_addr();
        self.metrics = Some(server);
        Ok(bound)
    }

    /// The offloads both devices were opened with.
    pub fn offloads(&self) -> crate::device::Offloads {
        self.devices[0].offloads()
    }

    /// How many queues tunfw reads of the LAN and the WAN device
    /// ([`crate::device::steering::QUEUES`], or 1 where the device has a
    /// single queue).
    pub fn queue_counts(&self) -> [usize; 2] {
        [self.devices[0].queue_count(), self.devices[1].queue_count()]
    }

    /// The control socket, if any (to hand it to another user).
    pub fn control_path(&self) -> Option<&Path> {
        self.control.as_ref().map(ControlServer::path)
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.started.elapsed().as_millis() as u64)
    }

    /// Run until SIGINT or SIGTERM; returns the exit summary line.
    pub fn run(&mut self) -> io::Result<String> {
        let mut events = Events::with_capacity(64);
        let mut bufs = Buffers {
            packet: vec![0u8; MAX_FRAME],
            answer: vec![0u8; MAX_FRAME],
            segment: vec![0u8; MAX_FRAME],
        };
        // Queues known to have packets waiting (their budget ran out),
        // indexed as `self.queues`.
        let n = self.queues.len();
        let mut ready = vec![false; n];
        let mut first = 0;
        loop {
            let now = self.now();
            let deadline = self
                .fw
                .next_deadline(now)
                .min(self.control_deadline())
                .min(self.metrics_deadline());
            let timeout = if ready.contains(&true) {
                Some(std::time::Duration::ZERO)
            } else {
                (deadline != Instant::NEVER).then(|| deadline.saturating_since(now))
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut quit = false;
            for event in events.iter() {
                match event.token() {
                    Token(t) if (FIRST_QUEUE..FIRST_QUEUE + n).contains(&t) => {
                        ready[t - FIRST_QUEUE] = true;
                    }
                    SIGNALS => {
                        let pending: Vec<i32> = self.signals.pending().collect();
                        for sig in pending {
                            match sig {
                                SIGINT | SIGTERM => quit = true,
                                SIGHUP => {
                                    let _ = self.reload(None);
                                }
                                _ => {}
                            }
                        }
                    }
                    CONTROL => {
                        if let Some(c) = self.control.as_mut() {
                            c.listener_ready();
                        }
                    }
                    METRICS => {
                        if let Some(m) = self.metrics.as_mut() {
                            m.listener_ready();
                        }
                    }
                    token if self.metrics.as_ref().is_some_and(|m| m.owns(token)) => {
                        let now = self.now();
                        if let Some(m) = self.metrics.as_mut() {
                            m.handle(token, now);
                        }
                    }
                    token => self.serve(Some(token)),
                }
            }
            for k in 0..n {
                let i = (first + k) % n;
                if ready[i] {
                    let (side, queue) = self.queues[i];
                    ready[i] = self.drain(side, queue, &mut bufs, BUDGET);
                }
            }
            first = (first + 1) % n.max(1);
            let now = self.now();
            if self.fw.next_deadline(now) <= now {
                self.fw.tick(now);
            }
            if self.control_deadline() <= now {
                self.serve(None);
            }
            self.serve_metrics(now);
            self.publish_events();
            self.publish_traces();
            if let Some(p) = self.pcap.as_mut() {
                let _ = p.writer.flush();
            }
            if quit {
                if let Some(path) = self.state_file.clone() {
                    let _ = self.save_state(&path);
                }
                return Ok(self.summary());
            }
        }
    }

    /// Reload from `file` once, or from the start-up config; returns what
    /// changed and the name of the config read.
    fn reload(&mut self, file: Option<PathBuf>) -> Result<(ReloadSummary, String), String> {
        let source = self.startup.for_reload(file);
        let config = match source.load() {
            Ok(c) => c,
            Err(e) => {
                log::error!("reload failed, running config unchanged: {e}");
                return Err(e.to_string());
            }
        };
        if let Err(e) = self.open_pcap(&config) {
            log::error!("reload failed, running config unchanged: {e}");
            return Err(e.to_string());
        }
        let summary = self.fw.reload(&config, self.now());
        let name = source.name();
        log::info!(
            "reloaded: {} rules, {} rule counters carried over, {} flows kept, {} removed by recheck; config {name}",
            summary.rules,
            summary.counters_carried,
            summary.flows_kept,
            summary.flows_removed
        );
        Ok((summary, name))
    }

    /// When the control server's housekeeping is next due.
    fn control_deadline(&self) -> Instant {
        self.control
            .as_ref()
            .map_or(Instant::NEVER, ControlServer::next_deadline)
    }

    /// When the metrics server next needs a turn: at once while a census
    /// is under way, else its own deadline.
    fn metrics_deadline(&self) -> Instant {
        match &self.metrics {
            None => Instant::NEVER,
            Some(_) if self.census.is_some() => Instant::ZERO,
            Some(m) => m.next_deadline(),
        }
    }

    /// The metrics server's turn: accepts and deadlines when due, and for
    /// clients waiting for the text one [`CENSUS_CHUNK`] of the table
    /// census; once the census is done, the text, to all of them.
    fn serve_metrics(&mut self, now: Instant) {
        let Some(server) = self.metrics.as_mut() else {
            return;
        };
        if server.next_deadline() <= now {
            server.tick(now);
        }
        if !server.waiting() {
            self.census = None;
            return;
        }
        let census = self.census.get_or_insert_with(Census::new);
        if !census.step(&self.fw, now, CENSUS_CHUNK) {
            return;
        }
        let mut shell = self.counters;
        if let Some(c) = self.control.as_ref() {
            shell.control = c.counters();
        }
        let text = metrics::render(&self.fw, &shell, census, Some(&server.counters()));
        server.deliver(now, &text);
        self.census = None;
    }

    /// Serve the control client `token`, or (`None`) run the control
    /// server's housekeeping: accepts and deadlines.
    fn serve(&mut self, token: Option<Token>) {
        let Some(mut control) = self.control.take() else {
            return;
        };
        let now = self.now();
        let mut answer = |req, counters: &ControlCounters| self.answer(req, counters);
        match token {
            Some(token) if control.owns(token) => control.handle(token, now, &mut answer),
            Some(_) => {}
            None => {
                control.tick(now, &mut answer);
                // One step of each listing a turn (this branch runs once a turn).
                let fw = &self.fw;
                control.fill_listings(now, &mut |listing, out| {
                    listing.step(fw, now, LISTING_SLOTS, LISTING_FLOWS, out)
                });
            }
        }
        for slot in control.take_closed_traces() {
            self.fw.tracer_mut().remove(slot);
        }
        if control.has_subscribers() {
            self.fw.conntrack_mut().events.enable(EVENT_RING);
        } else {
            self.fw.conntrack_mut().events.disable();
        }
        self.control = Some(control);
    }

    fn answer(&mut self, req: Result<Request, String>, control: &ControlCounters) -> Answer {
        let now = self.now();
        self.counters.control = *control;
        match dispatch(&mut self.fw, &self.counters, now, req) {
            Dispatch::Answer(bytes) => Answer::Once(bytes),
            Dispatch::Listing(listing) => Answer::Listing(listing),
            Dispatch::Subscribe => Answer::Subscribe,
            Dispatch::Trace(filter) => match self.fw.tracer_mut().add(filter) {
                Some(slot) => Answer::Trace(slot),
                None => Answer::Once(error_answer(&format!(
                    "too many trace subscribers ({}); try later",
                    crate::filter::trace::MAX_TRACERS
                ))),
            },
            Dispatch::Reload(file) => Answer::Once(match self.reload(file) {
                Ok((summary, config)) => {
                    serde_json::to_vec(&serde_json::json!({ "ok": summary, "config": config }))
                        .unwrap_or_default()
                }
                Err(e) => error_answer(&e),
            }),
            Dispatch::Save(file) => Answer::Once(match self.save_state(&file) {
                Ok(v) => serde_json::to_vec(&v).unwrap_or_default(),
                Err(e) => error_answer(&e),
            }),
        }
    }

    /// Send the trace records waiting to their subscribers, and once a
    /// second the count of those not shown.
    fn publish_traces(&mut self) {
        if !self.fw.tracer_mut().active() {
            return;
        }
        let now = self.now();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        let mut lines: Vec<(usize, String)> = Vec::new();
        let fw = &mut self.fw;
        let mut records = Vec::new();
        fw.tracer_mut().drain(|out| match out {
            TraceOutput::Record(slot, rec) => records.push((slot, *rec)),
            TraceOutput::NotShown(slot, n) => lines.push((slot, not_shown_line(n))),
        });
        for (slot, rec) in records {
            lines.push((slot, rec.json_line(fw.chain(rec.side))));
        }
        if now.saturating_since(self.trace_reported) >= core::time::Duration::from_secs(1) {
            self.trace_reported = now;
            fw.tracer_mut()
                .report_not_shown(|slot, n| lines.push((slot, not_shown_line(n))));
        }
        for (slot, mut line) in lines {
            line.push('\n');
            control.send_trace(now, slot, line.as_bytes());
        }
        for slot in control.take_closed_traces() {
            fw.tracer_mut().remove(slot);
        }
    }

    fn publish_events(&mut self) {
        let now = self.now();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        if !self.fw.conntrack().events.enabled() {
            return;
        }
        let started = self.started;
        let mut out = Vec::new();
        self.fw.conntrack_mut().events.drain(|e: &Event| {
            let line = report::event_json(e, started);
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        });
        if !out.is_empty() {
            control.broadcast(now, &out);
        }
        // The last subscriber may have gone: stop recording.
        if !control.has_subscribers() {
            self.fw.conntrack_mut().events.disable();
        }
    }

    /// Read and handle up to `budget` packets from `side`'s `queue`.
    /// Returns true when the budget ran out first: more packets may be
    /// waiting.
    fn drain(&mut self, side: Side, queue: usize, bufs: &mut Buffers, budget: u32) -> bool {
        let header_len = self.header_len;
        // One clock read per turn: a turn is well under a millisecond.
        let now = self.now();
        for _ in 0..budget {
            let n = match self.devices[side.index()].recv(queue, &mut bufs.packet) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("read from {}: {e}", self.devices[side.index()].name());
                    return false;
                }
            };
            if let Some(reads) = self.counters.queue_reads[side.index()].get_mut(queue) {
                *reads += 1;
            }
            if self.passthrough {
                // The virtio-net header, if any, goes on with the packet.
                self.write(side.other(), &bufs.packet[..n]);
                continue;
            }
            let vnet = if header_len == 0 {
                vnet::PLAIN
            } else {
                match VnetHeader::read(&bufs.packet[..n]) {
                    Some(h) if n > header_len => h,
                    _ => {
                        // The kernel never sends this; nothing to forward.
                        self.counters.short_frames[side.index()] += 1;
                        continue;
                    }
                }
            };
            let resegment = self.deliver(side, &vnet, &mut bufs.packet, n, &mut bufs.answer, now);
            if resegment {
                self.resegment(side, &vnet, n, bufs, now);
            }
        }
        true
    }

    /// Decide one frame, `room[..n]` (virtio-net header, if any, then the
    /// packet; the rest of `room` is where a rewrite may grow it) and
    /// write what the verdict says. Returns true when the frame is a
    /// super-packet to be cut into segments first.
    fn deliver(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        room: &mut [u8],
        n: usize,
        answer: &mut [u8],
        now: Instant,
    ) -> bool {
        let header_len = self.header_len;
        let verdict = self.fw.process_in(
            side,
            vnet,
            &mut room[header_len..],
            n - header_len,
            &mut answer[header_len..],
            now,
        );
        if verdict.fate == Fate::Resegment {
            return true;
        }
        // The frame as it leaves: a rewrite may have changed its length.
        let end = verdict.resized.map_or(n, |len| header_len + len);
        if verdict.logged || (verdict.drop_reason().is_some() && self.pcap.is_some()) {
            self.record(side, vnet, &room[header_len..end], &verdict);
        }
        if verdict.forwards() {
            self.write(side.other(), &room[..end]);
        }
        if let Fate::ForwardFragments(n) = verdict.fate {
            // A forwarded datagram has no answer: the answer buffer (a
            // whole frame long) carries its pieces, plain packets whose
            // virtio-net header bytes are zero.
            answer[..header_len].fill(0);
            for index in 0..n {
                match self.fw.fragment_piece(index, &mut answer[header_len..]) {
                    Some(len) => self.write(side.other(), &answer[..header_len + len]),
                    None => break,
                }
            }
        }
        if verdict.answer_len > 0 {
            // answer[..header_len] stays zero: a plain packet, checksums complete.
            self.write(side, &answer[..header_len + verdict.answer_len]);
        }
        false
    }

    /// Cut the TCP super-packet in `bufs.packet[..n]`, IPv4 or IPv6, into
    /// the segments it stands for and deliver each as a plain packet.
    fn resegment(
        &mut self,
        side: Side,
        vnet: &VnetHeader,
        n: usize,
        bufs: &mut Buffers,
        now: Instant,
    ) {
        let header_len = self.header_len;
        let super_packet = &bufs.packet[header_len..n];
        let count = match segment::segment_count(super_packet, vnet.gso_size) {
            Ok(c) => c,
            Err(e) => {
                self.counters.unsegmentable[side.index()] += 1;
                if log::log_enabled!(log::Level::Debug) && self.debug_log_limit.take(now) {
                    log::debug!(
                        "cannot segment a super-packet from {}: {e:?}",
                        side.as_str()
                    );
                }
                return;
            }
        };
        for index in 0..count {
            let super_packet = &bufs.packet[header_len..n];
            let out = &mut bufs.segment[header_len..];
            let Ok(len) = segment::segment(super_packet, vnet.gso_size, index, out) else {
                // The count above came from the same lengths: only an
                // output buffer too small for a segment gets here.
                self.counters.unsegmentable[side.index()] += 1;
                return;
            };
            self.deliver(
                side,
                &vnet::PLAIN,
                &mut bufs.segment,
                header_len + len,
                &mut bufs.answer,
                now,
            );
        }
    }

    /// Log and capture one packet (only for logged or dropped packets).
    fn record(&mut self, side: Side, vnet: &VnetHeader, packet: &[u8], verdict: &Verdict) {
        if verdict.logged {
            log::info!("{}", log_line(&self.fw, side, vnet, packet, verdict));
        }
        if let Some(p) = self.pcap.as_mut() {
            let wanted = match p.packets {
                PcapPackets::Dropped => verdict.drop_reason().is_some(),
                PcapPackets::Logged => verdict.logged,
            };
            if wanted {
                if let Err(e) = p.writer.write(packet) {
                    log::error!("pcap {}: {e}; capture stopped", p.path);
                    self.pcap = None;
                }
            }
        }
    }

    fn write(&mut self, side: Side, packet: &[u8]) {
        if let Err(e) = self.devices[side.index()].send(packet) {
            self.counters.tx_errors[side.index()] += 1;
            if log::log_enabled!(log::Level::Debug) && self.debug_log_limit.take(self.now()) {
                log::debug!("write to {}: {e}", self.devices[side.index()].name());
            }
        }
    }

    /// One line of counters: what the exit prints.
    pub fn summary(&self) -> String {
        let mut shell = self.counters;
        if let Some(c) = self.control.as_ref() {
            shell.control = c.counters();
        }
        let counters = report::counters(&self.fw, &shell);
        let nonzero: Vec<String> = counters
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("tunfw: exiting; counters: {}", nonzero.join(" "))
    }
}
