//! The container's terminal: a pty opened inside the container (from its own devpts), whose
//! master goes to the engine over `--console-socket` and whose slave becomes the process's
//! stdin, stdout, stderr and controlling terminal.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Connects to the engine's console socket (conmon's, the shim's): done by the runtime before
/// the container's process exists, which inherits the connection and sends its pty over it.
pub fn connect(path: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    let shown = || format!("connecting to the console socket {}", path.display());
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_context(shown)?;
    let addr = UnixAddr::new(path).with_context(shown)?;
    connect(fd.as_raw_fd(), &addr).with_context(shown)?;
    Ok(fd)
}

/// Opens a new pty from the devpts at /dev/pts of the calling process's root, sizes it
/// (`size`: rows, columns), sends its master over `socket` (one descriptor by SCM_RIGHTS, with
/// a non-empty payload as conmon requires) and makes its slave the caller's terminal, in a
/// session of its own. Call it in the container, after the pivot.
pub fn attach_new_pty(socket: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .context("opening the container's terminal (/dev/ptmx)")?;
    nix::pty::grantpt(&master).context("granting the terminal")?;
    nix::pty::unlockpt(&master).context("unlocking the terminal")?;
    let name = nix::pty::ptsname_r(&master).context("naming the terminal")?;
    let slave = nix::fcntl::open(
        name.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_context(|| format!("opening {name}"))?;
    if let Some((rows, cols)) = size {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from `size`, a live value.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    }
    send_fd(socket, master.as_raw_fd(), name.as_bytes())
        .context("sending the terminal to the console socket")?;
    drop(master);
    nix::unistd::setsid().context("starting a session for the terminal")?;
    // SAFETY: TIOCSCTTY takes an integer argument and only changes this process's
    // controlling terminal.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Errno::last()).context("making the terminal the controlling terminal");
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process owns.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Errno::last()).context("connecting the terminal");
        }
    }
    Ok(())
}

/// Sends descriptor `fd` over the connected unix socket `socket` with `payload` as data.
pub fn send_fd(socket: &OwnedFd, fd: i32, payload: &[u8]) -> Result<()> {
    let payload = if payload.is_empty() {
        b"/dev/console"
    } else {
        payload
    };
    let iov = [IoSlice::new(payload)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    loop {
        match sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => return Ok(()),
        }
    }
}

/// Receives one descriptor sent over the connected unix socket `socket` (what
/// [`attach_new_pty`] sends).
pub fn receive_fd(socket: &OwnedFd) -> Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::os::fd::FromRawFd;
    let mut payload = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut payload)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the terminal")?;
    for cmsg in msg.cmsgs().context("receiving the terminal")? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us alone.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    anyhow::bail!("the container sent no terminal")
}
