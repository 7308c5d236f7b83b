//! TUN devices: opened without packet-info header, non-blocking.
//!
//! Opening attaches to a persistent device of that name (made with
//! `ip tuntap add`) or creates a transient one that disappears when tunfw
//! exits. tunfw never changes addresses, routes or link state: the caller
//! wires the devices.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tun_tap::{Iface, Mode};

/// An open TUN device.
pub struct TunDevice {
    iface: Iface,
    name: String,
}

/// Why a device could not be opened, in one line a user can act on.
#[derive(Debug)]
pub struct OpenError {
    /// The message.
    pub message: String,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpenError {}

impl TunDevice {
    /// Open (create or attach to) the TUN device `name`, non-blocking.
    pub fn open(name: &str) -> Result<TunDevice, OpenError> {
        let explain = |e: io::Error| {
            let why = match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => format!(
                    "permission denied ({e}); tunfw needs CAP_NET_ADMIN: run it as root or with sudo, \
                     or create the device with `ip tuntap add {name} mode tun user USER`"
                ),
                Some(libc::ENOENT) | Some(libc::ENODEV) => {
                    format!("{e}; is /dev/net/tun present (modprobe tun)?")
                }
                Some(libc::EBUSY) => format!("{e}; is another program attached to it?"),
                Some(libc::EINVAL) => format!(
                    "{e}; a device of that name exists but is not a single-queue TUN device"
                ),
                _ => e.to_string(),
            };
            OpenError {
                message: format!("cannot open TUN device {name}: {why}"),
            }
        };
        if name.is_empty() || name.len() >= 16 {
            return Err(OpenError {
                message: format!("bad TUN device name {name:?}: 1 to 15 characters"),
            });
        }
        let iface = Iface::without_packet_info(name, Mode::Tun).map_err(explain)?;
        iface.set_non_blocking().map_err(explain)?;
        Ok(TunDevice {
            name: iface.name().to_string(),
            iface,
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read one packet; `WouldBlock` when none is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface.recv(buf)
    }

    /// Write one packet.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.iface.send(buf)
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }
}
