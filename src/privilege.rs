//! Dropping privileges after the devices and the control socket are open:
//! supplementary groups, gid, uid, and `no_new_privs`, in that order.

use std::ffi::CString;
use std::io;
use std::path::Path;

/// A resolved user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Look a user up by name (or numeric id).
pub fn lookup(name: &str) -> io::Result<User> {
    let cname = CString::new(name).map_err(|_| io::Error::other("user name contains NUL"))?;
    // SAFETY: getpwnam returns a pointer to static storage or NULL; we copy
    // the two fields we need before any other libc call.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if !pw.is_null() {
        let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
        return Ok(User { uid, gid });
    }
    if let Ok(uid) = name.parse::<u32>() {
        return Ok(User { uid, gid: uid });
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such user {name:?}"),
    ))
}

/// Hand `path` (the control socket) to `user`, then become `user` for good.
pub fn drop_to(user: User, path: Option<&Path>) -> io::Result<()> {
    if let Some(p) = path {
        let c = CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::other("path contains NUL"))?;
        // SAFETY: plain syscalls on valid C strings and integers.
        if unsafe { libc::chown(c.as_ptr(), user.uid, user.gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: plain syscalls with valid arguments; each result is checked.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(user.gid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(user.uid) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::getuid() != user.uid || libc::geteuid() != user.uid {
            return Err(io::Error::other("uid did not change"));
        }
    }
    Ok(())
}
