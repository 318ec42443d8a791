//! A PID namespace for commands that build and enter chroots as the tools of a distribution
//! do (debootstrap, mmdebstrap, pbuilder): they mount procfs on the chroot's /proc, which the
//! kernel allows a user namespace only from a PID namespace it owns.
//!
//! The command runs under a small init: PID 1 mounts a fresh /proc, starts the command as
//! PID 2, passes signals on, reaps the orphans that get reparented to it, and ends with the
//! command's status. The command itself is not PID 1, because PID 1 gets no signal it has no
//! handler for: a shell script as PID 1 would ignore SIGTERM and ^C.
//!
//! It must not be used for contain's init, which is the container's command itself: this small init
//! is pseudo's, and it must not touch a mount outside the mount namespace `pseudo -p` created.

use crate::process::{self, Exec};
use crate::session::TERMINAL_SIGNALS;
use crate::supervise::{Signal, Supervisor};
use anyhow::Result;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

/// Mounts a procfs of the caller's PID namespace over /proc, so that /proc shows only the
/// namespace's processes and `ps` agrees with what the command can signal.
pub fn mount_own_proc() -> Result<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|errno| {
        let why = if errno == Errno::EPERM {
            " (the kernel refuses a new procfs while parts of the host's /proc are covered by \
             other mounts, as in some container runtimes)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "mounting /proc for the new PID namespace failed: {}{why}",
            errno.desc()
        )
    })
}

/// Runs `command` as the only child of this process, which must be PID 1 of a new PID
/// namespace with its own mount namespace: mounts /proc, passes the `forward` signals on to
/// the command, reaps every process that ends up orphaned, and returns the command's
/// shell-style status as soon as it ends. Returning ends PID 1, and with it, by the kernel's
/// doing, every process the command left behind.
///
/// `prepare` runs in the command's process before exec (it starts the command's session).
/// PID 1 leaves the caller's session and process group first, so that signals reach it only
/// from the tool, which passes them on once, not also from the caller's terminal.
pub fn run_as_init(
    command: &Exec,
    forward: &[Signal],
    prepare: impl FnOnce() -> Result<()>,
) -> Result<i32> {
    nix::unistd::setsid().map_err(|e| anyhow::anyhow!("starting a session: {}", e.desc()))?;
    mount_own_proc()?;
    let supervisor = Supervisor::reaping_orphans(forward)?.passing_to_group(&TERMINAL_SIGNALS);
    let child = process::spawn(0, || {
        prepare()?;
        Err(command.exec())
    })
    .map_err(|errno| anyhow::anyhow!("starting the command: {}", errno.desc()))?;
    supervisor.wait(child)
}
