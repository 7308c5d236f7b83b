//! Connection tracking helpers: protocol parsers that read a tracked control
//! flow and announce the flows it will open (expectations), so that those
//! flows are RELATED. Helpers are attached only where the config says so.

pub mod ftp;
