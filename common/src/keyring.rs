//! The session keyring: each container, and each command inject runs, gets one of its own.
//!
//! Without it a container inherits the caller's session keyring, whatever its lock-down: it
//! could read the caller's keys (a user namespace does not hide them) and leave keys there that
//! outlive it. A new anonymous session keyring starts empty and ends with its last process.
//!
//! It must not join, link or read the caller's keyring: the new one is anonymous and empty.

use anyhow::{Context, Result};
use nix::errno::Errno;

/// keyctl(2) operation: join (here: create and join) a session keyring.
const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;

/// Replaces the calling process's session keyring with a new, empty, anonymous one, which its
/// children inherit. A kernel without keyrings has nothing to share: that is not an error.
pub fn join_new_session() -> Result<()> {
    // SAFETY: with a null name, keyctl creates a keyring and reads no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    match Errno::result(ret) {
        Ok(_) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).context("creating a session keyring of its own"),
    }
}
