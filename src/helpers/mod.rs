//! Connection tracking helpers: protocol parsers that read a tracked control
//! flow and announce the flows it will open (expectations), so that those
//! flows are RELATED. Helpers are attached only where the config says so.
//!
//! [`ftp`] is the parser and its per-flow state, a pure function of the
//! bytes (with `pton`, the kernel's `in6_pton` for EPRT's IPv6 address);
//! [`glue`] runs it on a flow and files the expectations.

pub mod ftp;
pub mod glue;
mod pton;
