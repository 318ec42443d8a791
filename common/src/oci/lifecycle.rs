//! The commands on an existing container: start, state, kill, delete, ps, list.

use super::hooks;
use super::inspect;
use super::state::{self, hook_state, state_json, ContainerDir, Status, START_SOCKET};
use anyhow::{bail, Context, Result};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

/// Lets a created container's process go on to exec its command, then runs the poststart
/// hooks.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    match dir.status(&saved) {
        Status::Created => {}
        status => bail!("cannot start a container that is {}", status.name()),
    }
    let conn = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating a socket")?;
    let address = UnixAddr::new(&dir.short_path(START_SOCKET))?;
    connect(conn.as_raw_fd(), &address).context("reaching the container's process")?;
    let mut answer = [0u8; 1];
    let answered = loop {
        match nix::unistd::read(&conn, &mut answer) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let _ = std::fs::remove_file(dir.path.join(START_SOCKET));
    if answered != Ok(1) {
        bail!("the container's process ended before it started");
    }
    // The connection ends when the process executes its command (or ends): once the command
    // runs, the signals of a `kill` after start are its own to handle, as under runc.
    loop {
        match nix::unistd::read(&conn, &mut answer) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    if !saved.poststart.is_empty() {
        hooks::run_warning(
            "poststart",
            &saved.poststart,
            &hook_state(&saved, "running"),
        );
    }
    Ok(())
}

/// The state JSON of a container.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    let status = dir.status(&saved);
    let mut json = state_json(&saved, status);
    if status != Status::Stopped && super::cgroups::is_paused(&saved) {
        json["status"] = "paused".into();
    }
    Ok(json)
}

/// Sends a signal to the container's process, or with `all` to all its processes.
pub fn kill(root: &Path, id: &str, signal: i32, all: bool) -> Result<()> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    if all {
        // Through the cgroup: every process, also once the first one has ended.
        if let Some(cgroups) = super::cgroups::Placement::open(&saved.cgroups)? {
            if cgroups.signal_all(signal) == 0 {
                bail!("container not running");
            }
            return Ok(());
        }
    }
    if dir.status(&saved) == Status::Stopped {
        bail!("container not running");
    }
    inspect::kill(&saved, signal, all)?;
    if signal == libc::SIGKILL && super::cgroups::is_paused(&saved) {
        // A frozen process acts on SIGKILL only once thawed.
        if let Some(cgroups) = super::cgroups::Placement::open(&saved.cgroups)? {
            cgroups.freeze(false)?;
        }
    }
    Ok(())
}

/// Removes a stopped container (or, with `force`, kills it first; a created one is killed
/// as runc does), running its poststop hooks.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    if force && state::check_id(id).is_ok() && !state::exists(root, id) {
        return Ok(());
    }
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    match dir.status(&saved) {
        Status::Running if !force => {
            bail!("cannot delete container {id} that is not stopped: running")
        }
        Status::Stopped => {}
        Status::Created | Status::Running => {
            inspect::kill_all_and_wait(&saved, Duration::from_secs(10))?;
        }
    }
    // Poststop failures are warnings: the container is gone all the same.
    if !saved.poststop.is_empty() {
        hooks::run_warning("poststop", &saved.poststop, &hook_state(&saved, "stopped"));
    }
    // The first process is gone; what is left in the cgroups (a shared PID namespace) is
    // killed, and the cgroups go too.
    super::cgroups::remove(&saved.cgroups, saved.systemd_scope.as_ref());
    dir.remove()?;
    Ok(())
}

/// The PIDs of the container's processes.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    Ok(inspect::processes(&saved))
}

/// The state of every container under `root`.
pub fn list(root: &Path) -> Result<Vec<serde_json::Value>> {
    let mut states = Vec::new();
    for id in state::list_ids(root)? {
        // One deleted meanwhile is simply not listed.
        if let Ok(state) = state(root, &id) {
            states.push(state);
        }
    }
    Ok(states)
}

/// `run`: create, start, then (unless `detach`) wait for the container's process, remove the
/// container and return the process's status. The process is this command's child.
///
/// A process with a terminal and no `--console-socket` gets its terminal relayed to this
/// command's stdin and stdout, as runc does; signals to this command are passed on to it.
pub fn run(mut options: super::create::CreateOptions, detach: bool) -> Result<i32> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let ours = if options.console_socket.is_none() && !detach {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .context("creating a socket pair for the terminal")?;
        options.console_connection = Some(theirs);
        Some(ours)
    } else {
        None
    };
    let created = super::create::create(&options)?;
    options.console_connection = None;
    let pid = nix::unistd::Pid::from_raw(created.pid);
    let terminal = match &ours {
        Some(socket) if created.terminal => match super::terminal::receive_fd(socket) {
            Ok(master) => Some(master),
            Err(e) => {
                let _ = delete(&options.root, &options.id, true);
                return Err(e);
            }
        },
        _ => None,
    };
    // Made before start: no signal meant for the container is lost meanwhile.
    let supervisor = if detach {
        None
    } else {
        Some(crate::supervise::Supervisor::new()?)
    };
    if let Err(e) = start(&options.root, &options.id) {
        let _ = delete(&options.root, &options.id, true);
        return Err(e);
    }
    let Some(supervisor) = supervisor else {
        return Ok(0);
    };
    let status = match terminal {
        Some(master) => crate::console::Console::of_master(master)?.relay(&supervisor, pid)?,
        None => supervisor.wait(pid)?,
    };
    delete(&options.root, &options.id, true)?;
    Ok(status)
}
