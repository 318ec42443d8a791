//! A container's processes, seen from the host: for `kill --all`, `ps` and `delete --force`.
//! They are found through /proc, without cgroups (which a rootless runtime on a cgroup v1
//! host has none of): every process in the container's PID namespace, or, for a container
//! that shares its PID namespace, its process and that process's descendants.

use super::state::{process_alive, start_time, Saved};
use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

fn pid_namespace(pid: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    Some((meta.dev(), meta.ino()))
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// The live processes of the container whose first process is `saved.pid`, that one first;
/// empty once it has ended.
pub fn processes(saved: &Saved) -> Vec<i32> {
    let init = saved.pid;
    if let Ok(Some(cgroups)) = super::cgroups::Placement::open(&saved.cgroups) {
        // The cgroup holds them all, those whose first process has ended included.
        let mut pids = cgroups.processes();
        if let Some(at) = pids.iter().position(|&p| p == init) {
            pids.remove(at);
            if process_alive(init, saved.start_time) {
                pids.insert(0, init);
            }
        }
        return pids;
    }
    if !process_alive(init, saved.start_time) {
        return Vec::new();
    }
    let mut found = vec![init];
    let others = all_pids()
        .into_iter()
        .filter(|&p| p != init && start_time(p).is_some());
    match pid_namespace(init) {
        Some(ns) if Some(ns) != pid_namespace(std::process::id() as i32) => {
            found.extend(others.filter(|&p| pid_namespace(p) == Some(ns)));
        }
        _ => {
            let candidates: Vec<(i32, i32)> =
                others.filter_map(|p| Some((p, parent_of(p)?))).collect();
            let mut members: HashSet<i32> = HashSet::from([init]);
            loop {
                let before = members.len();
                for &(p, parent) in &candidates {
                    if members.contains(&parent) {
                        members.insert(p);
                    }
                }
                if members.len() == before {
                    break;
                }
            }
            let mut rest: Vec<i32> = members.into_iter().filter(|&p| p != init).collect();
            rest.sort_unstable();
            found.extend(rest);
        }
    }
    found
}

/// Sends `signal` to the container's first process (through a pidfd, checked to be that
/// process still), or with `all` to every process of the container.
pub fn kill(saved: &Saved, signal: i32, all: bool) -> Result<()> {
    if all {
        let pids = processes(saved);
        if pids.is_empty() {
            bail!("container not running");
        }
        for pid in pids {
            let _ = signal_process(pid, None, signal);
        }
        return Ok(());
    }
    match signal_process(saved.pid, Some(saved.start_time), signal) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => bail!("container not running"),
        Err(e) => Err(e).with_context(|| format!("sending signal {signal} to {}", saved.pid)),
    }
}

/// Signals `pid` through a pidfd, after checking (when `start` is given) that the PID still
/// names the process that started then: a PID reused since is never signalled.
fn signal_process(pid: i32, start: Option<u64>, signal: i32) -> Result<(), Errno> {
    let fd = crate::process::pidfd_open(pid)?;
    if let Some(start) = start {
        if !process_alive(pid, start) {
            return Err(Errno::ESRCH);
        }
    }
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number and a null info pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Kills every process of the container and waits (up to `limit`) until none lives.
pub fn kill_all_and_wait(saved: &Saved, limit: std::time::Duration) -> Result<()> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let pids = processes(saved);
        if pids.is_empty() {
            return Ok(());
        }
        match super::cgroups::Placement::open(&saved.cgroups) {
            // Frozen meanwhile so that none forks away, and thawed, so that a paused
            // container's processes act on it.
            Ok(Some(cgroups)) => {
                cgroups.signal_all(libc::SIGKILL);
            }
            _ => {
                for pid in pids {
                    let _ = signal_process(pid, None, libc::SIGKILL);
                }
            }
        }
        if std::time::Instant::now() > deadline {
            bail!("the container's processes did not end after SIGKILL");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `ps` in table form: ps's own output (with `args`, default `-ef`), keeping its header and
/// the rows of the container's processes.
pub fn print_ps_table(pids: &[i32], args: &[String]) -> Result<i32> {
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Ok(0);
    };
    let Some(column) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps {}: its output has no PID column", args.join(" "));
    };
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}

/// `list` in table form, as runc prints it.
pub fn print_list_table(states: &[serde_json::Value]) {
    println!(
        "{:<12} {:<10} {:<10} {:<40} {:<30} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for s in states {
        let text = |key: &str| s[key].as_str().unwrap_or("").to_string();
        println!(
            "{:<12} {:<10} {:<10} {:<40} {:<30} {}",
            text("id"),
            s["pid"].as_i64().unwrap_or(0),
            text("status"),
            text("bundle"),
            text("created"),
            text("owner")
        );
    }
}
