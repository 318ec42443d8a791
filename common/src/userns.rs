//! Creating a user namespace and writing its ID maps: the handshake every tool shares.
//!
//! The parent creates the child in new namespaces; the child waits on a pipe while the parent,
//! still outside with the caller's credentials, writes the child's maps (directly, or through
//! shadow's newuidmap/newgidmap for subordinate ranges); then the child becomes root inside and
//! goes on. Until the maps exist the child is `nobody` and can do nothing useful.
//!
//! It must not start a thread (unshare(CLONE_NEWUSER) fails in a threaded process) and must not let
//! the child go on before its maps are written.

use crate::idmap::{may_map_others, own_namespace, IdKind, IdMap, IdMaps};
use crate::ns::Namespace;
use crate::process;
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{Gid, Pid, Uid};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};

/// Writes the maps of the user namespace of `pid`.
///
/// A map naming only the caller's own ID is written to /proc directly (denying setgroups first
/// for gid_map, as the kernel requires of unprivileged writers); a caller holding CAP_SETUID
/// (CAP_SETGID) in its user namespace, real root or root of a container, writes anything
/// directly; everything else goes through newuidmap/newgidmap, which check /etc/subuid and
/// /etc/subgid themselves. The two helpers run at the same time.
///
/// Inside a user namespace, each range is first cut where the ranges of the caller's own map
/// end: the kernel refuses a line whose IDs span two of them.
pub fn write_maps(pid: Pid, maps: &IdMaps) -> Result<()> {
    let given = maps;
    let own_uids = own_namespace(IdKind::User);
    let maps = IdMaps {
        uid: maps.uid.within(&own_uids, IdKind::User)?,
        gid: maps
            .gid
            .within(&own_namespace(IdKind::Group), IdKind::Group)?,
    };
    let maps = &maps;
    let (uid_privileged, gid_privileged) =
        (may_map_others(IdKind::User), may_map_others(IdKind::Group));
    let uid_direct = uid_privileged || maps.uid.only_maps(IdKind::User.current());
    let gid_direct = gid_privileged || maps.gid.only_maps(IdKind::Group.current());
    // Root of a nested user namespace has no subordinate ranges of its own: without the
    // capability, only its own ID can be mapped.
    let nested_root = nix::unistd::geteuid().is_root() && !crate::idmap::is_initial(&own_uids);
    for (map, kind, direct) in [
        (&given.uid, IdKind::User, uid_direct),
        (&given.gid, IdKind::Group, gid_direct),
    ] {
        if nested_root && !direct {
            let (cap, option) = match kind {
                IdKind::User => ("CAP_SETUID", "-u"),
                IdKind::Group => ("CAP_SETGID", "-g"),
            };
            bail!(
                "{} map {map} needs {cap} in this user namespace, which this process lacks \
                 (dropped with --cap-drop?): map only your own {}: {option} 0:{}:1",
                kind.noun(),
                kind.noun(),
                kind.current()
            );
        }
    }

    let mut helpers = Vec::new();
    for (map, kind, is_direct) in [
        (&maps.gid, IdKind::Group, gid_direct),
        (&maps.uid, IdKind::User, uid_direct),
    ] {
        if !is_direct {
            helpers.push((kind, start_helper(pid, map, kind)?));
        }
    }
    let mut result = Ok(());
    if gid_direct {
        if !gid_privileged {
            result = write_proc(pid, "setgroups", "deny");
        }
        result =
            result.and_then(|_| write_proc(pid, IdKind::Group.map_file(), &maps.gid.proc_text()));
    }
    if uid_direct && result.is_ok() {
        result = write_proc(pid, IdKind::User.map_file(), &maps.uid.proc_text());
    }
    for (kind, child) in helpers {
        let outcome = finish_helper(kind, child);
        if result.is_ok() {
            result = outcome;
        }
    }
    result
}

fn write_proc(pid: Pid, file: &str, text: &str) -> Result<()> {
    write_proc_of(&pid.to_string(), file, text)
}

/// [`write_proc`] for /proc/`process` (a PID, or `self`).
fn write_proc_of(process: &str, file: &str, text: &str) -> Result<()> {
    let path = format!("/proc/{process}/{file}");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    match written {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && file.ends_with("_map") => {
            let (cap, option) = match file {
                "uid_map" => ("CAP_SETUID", "-u"),
                _ => ("CAP_SETGID", "-g"),
            };
            Err(anyhow!(
                "writing {path}: {e}: mapping IDs other than one's own needs {cap} in this user \
                 namespace (root there keeps it unless dropped) or a subordinate range for \
                 newuidmap/newgidmap; else map only your own ID: {option} 0:{}:1",
                match file {
                    "uid_map" => IdKind::User.current(),
                    _ => IdKind::Group.current(),
                }
            ))
        }
        other => other.with_context(|| format!("writing {path}")),
    }
}

fn start_helper(pid: Pid, map: &IdMap, kind: IdKind) -> Result<std::process::Child> {
    Command::new(kind.helper())
        .arg(pid.to_string())
        .args(map.helper_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!(
                    "{} {map} needs {}, which is not installed (Debian package uidmap)",
                    kind.map_file(),
                    kind.helper()
                )
            } else {
                anyhow!("running {}: {e}", kind.helper())
            }
        })
}

fn finish_helper(kind: IdKind, child: std::process::Child) -> Result<()> {
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for {}", kind.helper()))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let why = first
        .strip_prefix(&format!("{}: ", kind.helper()))
        .unwrap_or(first);
    if why.is_empty() {
        bail!("{} failed ({})", kind.helper(), out.status);
    }
    bail!(
        "{} failed: {why} (ranges must be granted in {})",
        kind.helper(),
        kind.subid_file()
    )
}

/// Makes the process root inside its new user namespace: uid and gid 0, no supplementary
/// groups where setgroups is allowed. A different euid is a credential change, so this must
/// come before anything that credential changes undo, such as the parent-death signal.
pub fn become_root() -> Result<()> {
    switch_to(Uid::from_raw(0), Gid::from_raw(0))
}

/// Switches every uid and gid of the process to `uid` and `gid` and clears the supplementary
/// groups (which the kernel refuses once setgroups is denied; there are none then anyway).
///
/// These are the raw system calls, not glibc's wrappers: glibc makes every thread it knows of
/// change credentials too, and a child forked by clone3 from a threaded process (a test
/// runner) inherits that list of threads without the threads, and would wait for them forever.
pub fn switch_to(uid: Uid, gid: Gid) -> Result<()> {
    let (u, g) = (uid.as_raw() as libc::c_long, gid.as_raw() as libc::c_long);
    // SAFETY: the credential system calls take integers and change only this process.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresgid, g, g, g) })
        .with_context(|| format!("switching to gid {gid}"))?;
    // SAFETY: as above; a zero-length list needs no valid pointer.
    match Errno::result(unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>())
    }) {
        Ok(_) | Err(Errno::EPERM) => {}
        Err(e) => return Err(e).context("clearing supplementary groups"),
    }
    // SAFETY: as above.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresuid, u, u, u) })
        .with_context(|| format!("switching to uid {uid}"))?;
    Ok(())
}

/// The child's end of the pipe its parent holds open for as long as it lives.
pub struct Lifeline<'a>(BorrowedFd<'a>);

impl Lifeline<'_> {
    /// Waits for the parent to let the child go on; false if the parent gave up (closed its
    /// end, or died) instead.
    pub fn released(&self) -> bool {
        let mut go = [0u8; 1];
        matches!(nix::unistd::read(self.0, &mut go), Ok(1))
    }

    /// Asks the kernel to SIGKILL this process when the parent dies, then checks that the
    /// parent has not died already. The request is undone by every credential change and by
    /// exec of a setuid program, so call it again after each.
    pub fn die_with_parent(&self) -> Result<()> {
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
            .context("setting the parent-death signal")?;
        let mut fds = [PollFd::new(self.0, PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::ZERO).context("checking on the parent")?;
        if ready > 0 {
            // Nothing more is ever written: readiness means the parent closed its end by dying.
            bail!("the parent process died");
        }
        Ok(())
    }
}

/// The pipe behind a [`Lifeline`]: made before the fork, its write end then kept by the parent
/// alone, for as long as it lives.
pub struct LifelinePipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl LifelinePipe {
    pub fn new() -> Result<LifelinePipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        Ok(LifelinePipe { read, write })
    }

    /// The child's side, right after the fork: its copy of the write end is closed, or the
    /// parent's death would go unnoticed.
    pub fn child(&self) -> Lifeline<'_> {
        // SAFETY: the child owns a copy of the descriptor table and ends with _exit, never
        // dropping its copy of `write`: closing the number here is the only close.
        unsafe { libc::close(self.write.as_raw_fd()) };
        Lifeline(self.read.as_fd())
    }

    /// The parent's side, after the fork: the write end, to keep open while the parent lives.
    pub fn parent(self) -> OwnedFd {
        self.write
    }
}

/// A child in new namespaces whose maps are written but which has not been let go.
pub struct NsChild {
    pub pid: Pid,
    release: OwnedFd,
    /// It waits for [`NsChild::release`] (all but [`NsChild::spawn_running`]'s).
    held: bool,
}

impl NsChild {
    /// Creates a child in a new user namespace plus the `extra` namespaces, writes its ID
    /// maps, and returns with the child held. After [`NsChild::release`] the child becomes root
    /// inside, arranges to die with its parent, and runs `body`.
    pub fn spawn(
        extra: &[Namespace],
        maps: &IdMaps,
        body: impl FnOnce(&Lifeline) -> Result<i32>,
    ) -> Result<NsChild> {
        let pipe = LifelinePipe::new()?;
        let flags = Namespace::User.flag() | Namespace::flags(extra);
        let spawned = process::spawn(flags, || {
            let lifeline = pipe.child();
            // Signals the parent passes on from its release until the command runs are held,
            // not ignored as a PID 1 without handlers would.
            crate::supervise::hold_forwarded()?;
            if !lifeline.released() {
                // The parent gave up (and said why) before letting us go.
                return Ok(crate::errors::FAILURE);
            }
            become_root()?;
            lifeline.die_with_parent()?;
            body(&lifeline)
        });
        let pid = match spawned {
            Ok(pid) => pid,
            Err(errno) => return Err(namespace_error(flags, extra, errno)),
        };
        let child = NsChild {
            pid,
            release: pipe.parent(),
            held: true,
        };
        if let Err(e) = write_maps(pid, maps) {
            child.abandon();
            return Err(e);
        }
        Ok(child)
    }

    /// [`NsChild::spawn`] without the hold where the child can write its maps itself, as
    /// `unshare -r` does: an unprivileged caller's maps that name only its own uid and gid
    /// (the kernel lets a process map its own IDs in a user namespace it is in). Then the
    /// child maps itself, becomes root and runs `body` at once, without waiting for the
    /// parent to write its maps and let it go, which on a busy machine is a wait for the
    /// scheduler each; [`NsChild::release`] does nothing. Otherwise it is [`NsChild::spawn`].
    /// For a parent with nothing to do while the child is held but what it may do as well
    /// while the child runs (open a pidfd of it: it is not reaped before the parent waits).
    pub fn spawn_running(
        extra: &[Namespace],
        maps: &IdMaps,
        body: impl FnOnce(&Lifeline) -> Result<i32>,
    ) -> Result<NsChild> {
        let maps_itself = !may_map_others(IdKind::User)
            && !may_map_others(IdKind::Group)
            && maps.uid.only_maps(IdKind::User.current())
            && maps.gid.only_maps(IdKind::Group.current());
        if !maps_itself {
            return NsChild::spawn(extra, maps, body);
        }
        let pipe = LifelinePipe::new()?;
        let flags = Namespace::User.flag() | Namespace::flags(extra);
        let spawned = process::spawn(flags, || {
            let lifeline = pipe.child();
            // Signals the parent passes on until the command runs are held, as in spawn.
            crate::supervise::hold_forwarded()?;
            // /proc/self: the PID of this process in its new PID namespace names another.
            write_proc_of("self", "setgroups", "deny")?;
            write_proc_of("self", IdKind::Group.map_file(), &maps.gid.proc_text())?;
            write_proc_of("self", IdKind::User.map_file(), &maps.uid.proc_text())?;
            become_root()?;
            lifeline.die_with_parent()?;
            body(&lifeline)
        });
        match spawned {
            Ok(pid) => Ok(NsChild {
                pid,
                release: pipe.parent(),
                held: false,
            }),
            Err(errno) => Err(namespace_error(flags, extra, errno)),
        }
    }

    /// A child that outlives its parent, as an OCI runtime's `create` leaves the container's
    /// process behind: created in the namespaces `flags` names (CLONE_NEW* bits), its maps
    /// written when `maps` is given (`flags` then holds CLONE_NEWUSER), held until
    /// [`NsChild::release_keeping`]; then it runs `body`, which must become root inside itself
    /// ([`become_root`]) when it has a new user namespace, and may wait on its lifeline for the
    /// parent's last word ([`Lifeline::released`] once more: false if the parent ended without
    /// it). No parent-death signal is set.
    pub fn spawn_detached(
        flags: u64,
        maps: Option<&IdMaps>,
        body: impl FnOnce(&Lifeline) -> Result<i32>,
    ) -> Result<NsChild> {
        let pipe = LifelinePipe::new()?;
        let spawned = process::spawn(flags, || {
            let lifeline = pipe.child();
            if !lifeline.released() {
                return Ok(crate::errors::FAILURE);
            }
            body(&lifeline)
        });
        let pid = match spawned {
            Ok(pid) => pid,
            Err(errno) => {
                let kinds: Vec<Namespace> = Namespace::JOIN_ORDER
                    .into_iter()
                    .filter(|ns| flags & ns.flag() != 0 && *ns != Namespace::User)
                    .collect();
                return Err(namespace_error(flags, &kinds, errno));
            }
        };
        let child = NsChild {
            pid,
            release: pipe.parent(),
            held: true,
        };
        if let Some(maps) = maps {
            if let Err(e) = write_maps(pid, maps) {
                child.abandon();
                return Err(e);
            }
        }
        Ok(child)
    }

    /// [`NsChild::spawn`] for a container whose mounts the kernel must lock: a child that
    /// `setup` mounts for, and then init, held, returned, released and running `body` as with
    /// [`NsChild::spawn`].
    ///
    /// The kernel locks the flags of every mount (read-only, nosuid, nodev, noexec, atime) and
    /// ties it to the mount it sits on when it copies a mount namespace into one owned by a
    /// less privileged user namespace. So the start has two stages. A setup child is made in a
    /// new user namespace (the outer one, which gets `maps`) and a new mount namespace; once
    /// `place` has run on it (to move it into a cgroup) and it is let go, it makes a cgroup
    /// namespace when `extra` names one, rooted at the cgroup it is in then, becomes root
    /// there and runs `setup`, whose
    /// mounts belong to the outer user namespace. It then makes init, as our child
    /// (CLONE_PARENT), in a user namespace nested in the outer one with the same IDs, a copy of
    /// the mount namespace owned by it, and the `extra` namespaces; writes init's maps, tells
    /// us init's PID and ends. Container root, root of the inner user namespace and owner of
    /// all of init's namespaces, can neither make writable nor unmount what setup mounted.
    /// Init starts in its copy of setup's working directory.
    pub fn spawn_locked(
        extra: &[Namespace],
        maps: &IdMaps,
        place: impl FnOnce(Pid) -> Result<()>,
        setup: impl FnOnce() -> Result<()>,
        body: impl FnOnce(&Lifeline) -> Result<i32>,
    ) -> Result<NsChild> {
        let pipe = LifelinePipe::new()?;
        let (report_read, report_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        // The cgroup namespace is made after the release, in the cgroup `place` chose.
        let setup_extra: &[Namespace] = &[Namespace::Mount];
        let own_cgroup_namespace = extra.contains(&Namespace::Cgroup);
        let setup_flags = Namespace::User.flag() | Namespace::flags(setup_extra);
        let init_flags = Namespace::User.flag() | Namespace::Mount.flag() | Namespace::flags(extra);
        let spawned = process::spawn(setup_flags, || {
            let lifeline = pipe.child();
            // Held here already, so that init, which keeps this mask, never lacks it.
            crate::supervise::hold_forwarded()?;
            if !lifeline.released() {
                return Ok(crate::errors::FAILURE);
            }
            let outcome = (|| {
                become_root()?;
                lifeline.die_with_parent()?;
                if own_cgroup_namespace {
                    crate::ns::unshare(Namespace::Cgroup)?;
                }
                setup()?;
                // Becoming root here changed the host uid of a caller who is not container
                // root (real root), which made us undumpable: /proc/PID of init, which shares
                // our memory's flags, would be host root's, and its maps ours to write no
                // more. Dumpable until init has its maps; init restores what we were.
                let dumpable = nix::sys::prctl::get_dumpable().context("reading dumpable")?;
                nix::sys::prctl::set_dumpable(true).context("setting dumpable")?;
                let flags = init_flags | libc::CLONE_PARENT as u64;
                let init = process::spawn_keeping_signals(flags, || {
                    // SAFETY: init owns a copy of the descriptor table and ends with _exit,
                    // never dropping its copy of `report_write`: this is the only close. Our
                    // parent reads the report to its end, which comes when setup alone is done.
                    unsafe { libc::close(report_write.as_raw_fd()) };
                    if !lifeline.released() {
                        return Ok(crate::errors::FAILURE);
                    }
                    nix::sys::prctl::set_dumpable(dumpable).context("setting dumpable")?;
                    become_root()?;
                    lifeline.die_with_parent()?;
                    body(&lifeline)
                })
                .map_err(|errno| namespace_error(init_flags, extra, errno))?;
                if let Err(e) = write_identity_maps(init) {
                    let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
                    return Err(e);
                }
                Ok(init)
            })();
            let report = match outcome {
                Ok(init) => format!("{REPORT_PID}{init}"),
                Err(e) => format!(
                    "{REPORT_ERROR}{} {}",
                    crate::errors::status_of(&e),
                    crate::errors::one_line(&e)
                ),
            };
            // One write of less than PIPE_BUF bytes: whole, whatever the reader does.
            let mut end = report.len().min(REPORT_MAX);
            while !report.is_char_boundary(end) {
                end -= 1;
            }
            nix::unistd::write(&report_write, &report.as_bytes()[..end])
                .context("reporting to the parent")?;
            Ok(0)
        });
        drop(report_write);
        let setup_pid = match spawned {
            Ok(pid) => pid,
            Err(errno) => return Err(namespace_error(setup_flags, setup_extra, errno)),
        };
        let release = pipe.parent();
        let report = write_maps(setup_pid, maps)
            .and_then(|()| place(setup_pid))
            .and_then(|()| {
                nix::unistd::write(&release, &[1]).context("releasing the setup child")?;
                let mut report = String::new();
                std::fs::File::from(report_read)
                    .read_to_string(&mut report)
                    .context("reading the setup child's report")?;
                Ok(report)
            })
            .inspect_err(|_| process::kill_and_reap(setup_pid))?;
        let status = process::wait(setup_pid)?;
        if let Some(pid) = report.strip_prefix(REPORT_PID) {
            if let Ok(pid) = pid.parse() {
                return Ok(NsChild {
                    pid: Pid::from_raw(pid),
                    release,
                    held: true,
                });
            }
        }
        match report
            .strip_prefix(REPORT_ERROR)
            .and_then(|r| r.split_once(' '))
        {
            Some((code, message)) => Err(crate::errors::exit_error(
                code.parse().unwrap_or(crate::errors::FAILURE),
                message,
            )),
            None => {
                bail!("setting up the container ended with status {status} before making its init")
            }
        }
    }

    /// Lets the child go on. The write end stays open for as long as this process lives: its
    /// closing tells the child that its parent is gone.
    pub fn release(self) -> Result<Pid> {
        // A child not held would take the byte for its parent's end (see Lifeline).
        if self.held {
            nix::unistd::write(&self.release, &[1]).context("releasing the child")?;
        }
        std::mem::forget(self.release);
        Ok(self.pid)
    }

    /// Lets the child go on, and returns the write end of its lifeline: one more byte written
    /// there is the parent's last word; closing it without that byte (the parent's end, of
    /// SIGKILL too) tells the child the parent gave up.
    pub fn release_keeping(self) -> Result<(Pid, OwnedFd)> {
        nix::unistd::write(&self.release, &[1]).context("releasing the child")?;
        Ok((self.pid, self.release))
    }

    /// Kills the held child, for a start that failed after it was created.
    pub fn abandon(self) {
        process::kill_and_reap(self.pid);
    }
}

/// How the setup child of [`NsChild::spawn_locked`] reports: init's PID, or a status and the
/// one line of its failure.
const REPORT_PID: &str = "pid ";
const REPORT_ERROR: &str = "error ";
/// The longest report: shorter than PIPE_BUF, so that it is written at once.
const REPORT_MAX: usize = 4000;

/// Maps the user namespace of `pid`, a child of ours, onto ours ID for ID: the same IDs on
/// both sides, as many as ours holds. Written directly: we are root of the parent namespace.
fn write_identity_maps(pid: Pid) -> Result<()> {
    for kind in [IdKind::Group, IdKind::User] {
        let own = format!("/proc/self/{}", kind.map_file());
        let text = std::fs::read_to_string(&own).with_context(|| format!("reading {own}"))?;
        let identity: String = text
            .lines()
            .filter_map(
                |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                    [inside, _, count] => Some(format!("{inside} {inside} {count}\n")),
                    _ => None,
                },
            )
            .collect();
        write_proc(pid, kind.map_file(), &identity)?;
    }
    Ok(())
}

/// Finds which namespace the kernel refused, by trying each alone with a user namespace.
fn namespace_error(flags: u64, extra: &[Namespace], errno: Errno) -> anyhow::Error {
    let culprit = std::iter::once(Namespace::User)
        .chain(extra.iter().copied())
        .find(|ns| {
            let probe = Namespace::User.flag() | ns.flag();
            match process::spawn(probe, || Ok(0)) {
                Ok(pid) => {
                    let _ = process::wait(pid);
                    false
                }
                Err(_) => true,
            }
        });
    match culprit {
        Some(ns) => anyhow!(
            "creating a {} failed: {} ({})",
            ns.describe(),
            errno.desc(),
            ns.hint()
        ),
        None => anyhow!(
            "creating namespaces (flags {flags:#x}) failed: {}",
            errno.desc()
        ),
    }
}
