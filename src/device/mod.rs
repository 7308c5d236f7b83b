//! TUN devices: opened without packet-info header, non-blocking, with or
//! without the virtio-net header and kernel offloads.
//!
//! Opening attaches to a persistent device of that name (made with
//! `ip tuntap add`) or creates a transient one that disappears when tunfw
//! exits. tunfw never changes addresses, routes or link state: the caller
//! wires the devices.
//!
//! This is a small ioctl module of its own (it replaced the tun-tap crate,
//! which cannot set `IFF_VNET_HDR`): `TUNSETIFF` with
//! `IFF_TUN | IFF_NO_PI [| IFF_VNET_HDR]`, then with offloads
//! `TUNSETOFFLOAD` with checksum offload, TSO4, TSO6 and, when the kernel
//! has them (Linux 6.2 and later), USO4 and USO6. With offloads on, every
//! packet read starts with a [`VNET_HDR_LEN`]-byte virtio-net header (see
//! [`crate::wire::vnet::VnetHeader`]) and every packet written must start with
//! one; the kernel then hands tunfw TCP super-packets of up to 64 KiB and
//! packets whose transport checksum is left for the sender's device to fill
//! in, which is what makes the TUN path fast (one read and one write per
//! super-packet instead of per segment).
//!
//! Each device is opened with [`steering::QUEUES`] queues where it can be
//! (`IFF_MULTI_QUEUE`: a transient device, or a persistent one made with
//! `multi_queue`), and a [`steering`] program spreads packets over them by
//! flow, fragments in a queue of their own, so that a flood fills its own
//! ring and not the one other flows wait in. A persistent single-queue
//! device, or a kernel that refuses the program, leaves one queue for
//! everything (a log line says which and why).

pub mod steering;

use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

// <linux/if_tun.h>, from libc: the ioctl numbers follow the target's `_IOW`
// encoding and have its `ioctl` request type (`libc::Ioctl`).
use libc::{
    IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TUN, IFF_VNET_HDR, TUNSETIFF, TUNSETOFFLOAD, TUN_F_CSUM,
    TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_USO4, TUN_F_USO6,
};

/// Length of the virtio-net header (`struct virtio_net_hdr`) in front of
/// every packet when offloads are on (the kernel's default `TUNSETVNETHDRSZ`).
pub const VNET_HDR_LEN: usize = crate::wire::vnet::LEN;

const TUN_PATH: &str = "/dev/net/tun";
/// `struct ifreq` as TUNSETIFF reads it: the name, the flags, padding to 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Which offloads a device was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offloads {
    /// No virtio-net header: one plain IP packet per read and write.
    Off,
    /// Virtio-net header with checksum offload and TSO4/TSO6 (`uso`: also
    /// USO4/USO6, when the kernel accepted them).
    On {
        /// The kernel accepted UDP segmentation offload.
        uso: bool,
    },
}

impl Offloads {
    /// Bytes of virtio-net header in front of each packet read or written.
    pub fn header_len(self) -> usize {
        match self {
            Offloads::Off => 0,
            Offloads::On { .. } => VNET_HDR_LEN,
        }
    }

    /// For logs: `off`, `csum,tso4,tso6` or `csum,tso4,tso6,uso4,uso6`.
    pub fn describe(self) -> &'static str {
        match self {
            Offloads::Off => "off",
            Offloads::On { uso: false } => "csum,tso4,tso6",
            Offloads::On { uso: true } => "csum,tso4,tso6,uso4,uso6",
        }
    }
}

/// An open TUN device.
pub struct TunDevice {
    /// Its queues: one, or [`steering::QUEUES`] with the steering program
    /// attached. Every write goes to the first.
    queues: Vec<File>,
    name: String,
    offloads: Offloads,
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
    /// Open (create or attach to) the TUN device `name`, non-blocking; with
    /// `offloads`, with the virtio-net header and kernel offloads enabled.
    pub fn open(name: &str, offloads: bool) -> Result<TunDevice, OpenError> {
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
                Some(libc::EINVAL) => {
                    format!("{e}; a device of that name exists but is not a TUN device")
                }
                _ => e.to_string(),
            };
            OpenError {
                message: format!("cannot open TUN device {name}: {why}"),
            }
        };
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(OpenError {
                message: format!("bad TUN device name {name:?}: 1 to 15 characters"),
            });
        }
        let flags = IFF_TUN | IFF_NO_PI | if offloads { IFF_VNET_HDR } else { 0 };
        // A persistent single-queue device refuses IFF_MULTI_QUEUE (EINVAL).
        let (file, req, multi_queue) = match attach(name, flags | IFF_MULTI_QUEUE) {
            Ok((file, req)) => (file, req, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let (file, req) = attach(name, flags).map_err(explain)?;
                (file, req, false)
            }
            Err(e) => return Err(explain(e)),
        };
        let offloads = set_offloads(&file, offloads).map_err(explain)?;
        let len = req
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..len]).into_owned();
        let mut queues = vec![file];
        if multi_queue {
            match open_steered_queues(&queues[0], &name, flags | IFF_MULTI_QUEUE) {
                Ok(more) => queues.extend(more),
                Err(e) => log::warn!("{name}: one queue for every flow ({e})"),
            }
        } else {
            log::info!(
                "{name} is a persistent single-queue device: every flow shares its queue \
                 (`ip tuntap add {name} mode tun multi_queue` gives flows and fragments queues of their own)"
            );
        }
        Ok(TunDevice {
            name,
            queues,
            offloads,
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The offloads it was opened with; [`Offloads::header_len`] bytes of
    /// virtio-net header lead every packet read and written.
    pub fn offloads(&self) -> Offloads {
        self.offloads
    }

    /// The device's MTU as the kernel has it now (`SIOCGIFMTU`), read in
    /// the network namespace tunfw runs in; `None` when it cannot be read
    /// (the device was moved to another namespace).
    pub fn mtu(&self) -> Option<usize> {
        let mut req = IfReqInt::named(&self.name);
        let mtu = req.ioctl(libc::SIOCGIFMTU as _).ok()?;
        (mtu > 0).then_some(mtu as usize)
    }

    /// Set the device's transmit queue length (`SIOCSIFTXQLEN`, as `ip
    /// link set DEV txqueuelen N`): the kernel's ring of packets waiting
    /// for tunfw's read, resized at once. Needs CAP_NET_ADMIN in the
    /// namespace the device is in; the error says why it failed.
    pub fn set_queue_len(&self, len: u32) -> io::Result<()> {
        let mut req = IfReqInt::named(&self.name);
        req.value =
            libc::c_int::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        req.ioctl(libc::SIOCSIFTXQLEN as _).map(|_| ())
    }

    /// How many queues tunfw reads: [`steering::QUEUES`], or 1.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The queue fragments wait in, when the device has one.
    pub fn fragment_queue(&self) -> Option<usize> {
        (self.queues.len() == steering::QUEUES).then_some(steering::FRAGMENT_QUEUE as usize)
    }

    /// The descriptor of queue `queue` (0 to [`TunDevice::queue_count`] - 1).
    pub fn queue_fd(&self, queue: usize) -> Option<RawFd> {
        self.queues.get(queue).map(AsRawFd::as_raw_fd)
    }

    /// Read one packet from queue `queue` (with its virtio-net header when
    /// offloads are on); `WouldBlock` when none is waiting there, or when
    /// the device has no such queue.
    pub fn recv(&self, queue: usize, buf: &mut [u8]) -> io::Result<usize> {
        match self.queues.get(queue) {
            Some(mut file) => file.read(buf),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Write one packet (with its virtio-net header when offloads are on).
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self.queues.first() {
            Some(mut file) => file.write(buf),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// Enable the offloads tunfw uses on the device `file` is attached to
/// (`TUNSETOFFLOAD`), USO where the kernel has it, or (`on` false) clear
/// them; what the kernel granted.
fn set_offloads(file: &File, on: bool) -> io::Result<Offloads> {
    let set = |flags: libc::c_uint| {
        // SAFETY: TUNSETOFFLOAD takes the flags by value; the fd is an attached TUN.
        unsafe { libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD, flags as libc::c_ulong) }
    };
    if on {
        let base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
        if set(base | TUN_F_USO4 | TUN_F_USO6) == 0 {
            Ok(Offloads::On { uso: true })
        } else if set(base) == 0 {
            Ok(Offloads::On { uso: false })
        } else {
            Err(io::Error::last_os_error())
        }
    } else if set(0) == 0 {
        // A persistent device keeps the offloads an earlier user set:
        // cleared, or the kernel would still build super-packets.
        Ok(Offloads::Off)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Open /dev/net/tun non-blocking and attach it to the device `name` with
/// `flags` (creating a transient device if there is none); the request as
/// the kernel left it, with the device's name.
fn attach(name: &str, flags: libc::c_int) -> io::Result<(File, IfReq)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(TUN_PATH)?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        // libc's IFF_* are c_int; ifreq's flags field is a c_short (they fit).
        flags: flags as libc::c_short,
        _pad: [0; 22],
    };
    let len = name.len().min(libc::IFNAMSIZ - 1);
    req.name[..len].copy_from_slice(&name.as_bytes()[..len]);
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq`
    // lays out (40 bytes); the fd is open.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((file, req))
}

/// Give the multi-queue device that `first` is attached to its steering
/// program, keyed at random, then attach the rest of its
/// [`steering::QUEUES`] queues. The program is attached first: until then
/// the kernel would spread packets over the queues by its own flow hash.
fn open_steered_queues(first: &File, name: &str, flags: libc::c_int) -> io::Result<Vec<File>> {
    let key = std::collections::hash_map::RandomState::new().hash_one(name);
    let program = steering::program(key as u32, (key >> 32) as u32);
    let prog = steering::load(&program)
        .map_err(|e| io::Error::new(e.kind(), format!("eBPF load: {e}")))?;
    steering::attach(first, &prog)
        .map_err(|e| io::Error::new(e.kind(), format!("TUNSETSTEERINGEBPF: {e}")))?;
    (1..steering::QUEUES)
        .map(|_| {
            attach(name, flags)
                .map(|(file, _)| file)
                .map_err(|e| io::Error::new(e.kind(), format!("another queue: {e}")))
        })
        .collect()
}

impl AsRawFd for TunDevice {
    /// The first queue's descriptor.
    fn as_raw_fd(&self) -> RawFd {
        self.queues.first().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// A `struct ifreq` carrying an int (`ifr_mtu`, `ifr_qlen`): the name,
/// then the int, padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReqInt {
    name: [u8; libc::IFNAMSIZ],
    value: libc::c_int,
    _pad: [u8; 20],
}

impl IfReqInt {
    /// A request about the device `name` (cut to IFNAMSIZ - 1 bytes).
    fn named(name: &str) -> IfReqInt {
        let mut req = IfReqInt {
            name: [0; libc::IFNAMSIZ],
            value: 0,
            _pad: [0; 20],
        };
        let name = name.as_bytes();
        let len = name.len().min(libc::IFNAMSIZ - 1);
        req.name[..len].copy_from_slice(&name[..len]);
        req
    }

    /// Issue the interface ioctl `request` on a throwaway socket; the int
    /// the kernel left in the request.
    fn ioctl(&mut self, request: libc::Ioctl) -> io::Result<libc::c_int> {
        // SAFETY: a plain socket() call; the descriptor is closed below.
        let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the SIOC[GS]IF* int requests read the name and read or
        // write the int after it in a `struct ifreq`, which `IfReqInt`
        // lays out (40 bytes).
        let rc = unsafe { libc::ioctl(sock, request, self as *mut IfReqInt) };
        let err = io::Error::last_os_error();
        // SAFETY: `sock` is ours and closed once.
        unsafe { libc::close(sock) };
        if rc < 0 {
            Err(err)
        } else {
            Ok(self.value)
        }
    }
}
