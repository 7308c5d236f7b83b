//! The event loop: one thread, one mio `Poll` over both TUN devices, the
//! signal pipe and the control socket. It is a thin shell around
//! [`Firewall::process`]: read a packet, ask for a verdict, write it out.
//!
//! Each TUN device is drained until `WouldBlock` per wakeup (mio is
//! edge-triggered). The poll timeout is the firewall's next expiry deadline,
//! so an idle tunfw sleeps in `epoll_wait` and uses no CPU.

use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::control::{ControlServer, Request};
use crate::device::TunDevice;
use crate::filter::Firewall;
use crate::packet::Side;
use crate::report;
use crate::time::Instant;

const LAN: Token = Token(0);
const WAN: Token = Token(1);
const SIGNALS: Token = Token(2);
const CONTROL: Token = Token(3);
const FIRST_CLIENT: usize = 16;
/// Largest packet read from a TUN device (the largest IPv4 packet).
const MAX_PACKET: usize = 65_535;
/// Packets handled between two clock reads.
const CLOCK_EVERY: u32 = 64;

/// The running daemon.
pub struct EventLoop {
    poll: Poll,
    devices: [TunDevice; 2],
    fw: Firewall,
    signals: Signals,
    control: Option<ControlServer>,
    started: std::time::Instant,
    tx_errors: [u64; 2],
}

impl EventLoop {
    /// Set up polling on open devices, signals, and the control socket at `control`.
    pub fn new(
        lan: TunDevice,
        wan: TunDevice,
        fw: Firewall,
        control: Option<PathBuf>,
    ) -> io::Result<EventLoop> {
        let poll = Poll::new()?;
        let registry = poll.registry();
        registry.register(&mut SourceFd(&lan.as_raw_fd()), LAN, Interest::READABLE)?;
        registry.register(&mut SourceFd(&wan.as_raw_fd()), WAN, Interest::READABLE)?;
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
        Ok(EventLoop {
            poll,
            devices: [lan, wan],
            fw,
            signals,
            control,
            started: std::time::Instant::now(),
            tx_errors: [0; 2],
        })
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.started.elapsed().as_millis() as u64)
    }

    /// Run until SIGINT or SIGTERM; returns the exit summary line.
    pub fn run(&mut self) -> io::Result<String> {
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; MAX_PACKET];
        let mut answer = vec![0u8; MAX_PACKET];
        loop {
            let now = self.now();
            let deadline = self.fw.next_deadline(now);
            let timeout = (deadline != Instant::NEVER).then(|| deadline.saturating_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut quit = false;
            for event in events.iter() {
                match event.token() {
                    LAN => self.drain(Side::Lan, &mut buf, &mut answer),
                    WAN => self.drain(Side::Wan, &mut buf, &mut answer),
                    SIGNALS => {
                        for sig in self.signals.pending() {
                            match sig {
                                SIGINT | SIGTERM => quit = true,
                                SIGHUP => log::warn!(
                                    "SIGHUP: reload is not supported yet; config unchanged"
                                ),
                                _ => {}
                            }
                        }
                    }
                    CONTROL => {
                        if let Some(c) = self.control.as_mut() {
                            c.accept(self.poll.registry());
                        }
                    }
                    token => self.serve(token),
                }
            }
            let now = self.now();
            if self.fw.next_deadline(now) <= now {
                self.fw.tick(now);
            }
            if quit {
                return Ok(self.summary());
            }
        }
    }

    fn serve(&mut self, token: Token) {
        let Some(control) = self.control.as_mut() else {
            return;
        };
        if !control.owns(token) {
            return;
        }
        let now = Instant::from_millis(self.started.elapsed().as_millis() as u64);
        let fw = &self.fw;
        let tx_errors = self.tx_errors;
        control.handle(self.poll.registry(), token, |req| {
            let value = match req {
                Request::Stats => {
                    let map: serde_json::Map<String, serde_json::Value> =
                        report::counters(fw, tx_errors)
                            .into_iter()
                            .map(|(k, v)| (k, v.into()))
                            .collect();
                    serde_json::Value::Object(map)
                }
                Request::Flows => serde_json::to_value(report::flows(fw, now)).unwrap_or_default(),
                Request::Rules => serde_json::to_value(report::rules(fw)).unwrap_or_default(),
                Request::Expectations => {
                    serde_json::to_value(report::expectations(fw, now)).unwrap_or_default()
                }
            };
            serde_json::to_vec(&value).unwrap_or_default()
        });
    }

    fn drain(&mut self, side: Side, buf: &mut [u8], answer: &mut [u8]) {
        let mut now = self.now();
        let mut handled = 0u32;
        loop {
            let n = match self.devices[side.index()].recv(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("read from {}: {e}", self.devices[side.index()].name());
                    return;
                }
            };
            handled += 1;
            if handled % CLOCK_EVERY == 0 {
                now = self.now();
            }
            let verdict = self.fw.process(side, &mut buf[..n], answer, now);
            if verdict.forward {
                self.write(side.other(), &buf[..n]);
            }
            if verdict.answer_len > 0 {
                self.write(side, &answer[..verdict.answer_len]);
            }
        }
    }

    fn write(&mut self, side: Side, packet: &[u8]) {
        if let Err(e) = self.devices[side.index()].send(packet) {
            self.tx_errors[side.index()] += 1;
            log::debug!("write to {}: {e}", self.devices[side.index()].name());
        }
    }

    /// One line of counters: what the exit prints.
    pub fn summary(&self) -> String {
        let counters = report::counters(&self.fw, self.tx_errors);
        let nonzero: Vec<String> = counters
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("tunfw: exiting; counters: {}", nonzero.join(" "))
    }
}
