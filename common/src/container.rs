//! A container: what `contain` starts, from the supervisor's side and from init's.

use crate::caps::Lockdown;
use crate::console::Console;
use crate::hooks;
use crate::idmap::IdMaps;
use crate::mount::Rootfs;
use crate::net::{self, NetMode, Pasta, Publish};
use crate::ns::Namespace;
use crate::process::{Exec, DEFAULT_PATH};
use crate::supervise::{Signal, Supervisor};
use crate::userns::{Lifeline, NsChild};
use crate::watchdog::Watchdog;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Marks the container's processes, as systemd and other inits expect; inject finds
/// containers by it.
pub const MARKER: (&str, &str) = ("container", "contain");

/// The environment variable that gives the `-o` hook the PID of the container's init.
pub const INIT_PID_VAR: &str = "CONTAIN_PID";

/// Everything needed to start a container.
pub struct Container {
    /// The directory that becomes `/`.
    pub root: PathBuf,
    /// The command run as PID 1, looked up in the container's PATH.
    pub command: Vec<OsString>,
    pub maps: IdMaps,
    /// Emulate a console on a pty (else init gets our stdin, stdout and stderr).
    pub console: bool,
    /// How the container reaches a network: a private namespace, the host's, or pasta.
    pub network: NetMode,
    /// Host ports forwarded into the container (through pasta).
    pub publish: Vec<Publish>,
    /// Run with /bin/sh -c inside the new namespaces, in the new root, before the pivot.
    pub inside_hook: Option<String>,
    /// Run with /bin/sh -c outside, as the caller, once the namespaces exist.
    pub outside_hook: Option<String>,
    /// Capabilities, user and no_new_privs of the command, applied just before exec.
    pub lockdown: Lockdown,
}

impl Container {
    /// The namespaces a container gets besides its user namespace.
    fn namespaces(&self) -> Vec<Namespace> {
        let mut kinds = vec![
            Namespace::Mount,
            Namespace::Pid,
            Namespace::Ipc,
            Namespace::Uts,
            Namespace::Cgroup,
        ];
        // Kernels before 5.6 have no time namespace: leave it out rather than fail.
        if Path::new("/proc/self/ns/time").exists() {
            kinds.push(Namespace::Time);
        }
        if self.network.new_namespace() {
            kinds.push(Namespace::Net);
        }
        kinds
    }

    /// The clean environment init starts with.
    fn environment(&self) -> Vec<(String, String)> {
        let term = std::env::var("TERM").unwrap_or_else(|_| "linux".into());
        vec![
            (MARKER.0.into(), MARKER.1.into()),
            ("PATH".into(), DEFAULT_PATH.into()),
            ("TERM".into(), term),
        ]
    }

    /// Starts the container, supervises it and returns its init's status.
    ///
    /// reboot(2) in a PID namespace ends its init with a signal the init cannot catch: SIGINT
    /// for halt and power-off, SIGHUP for restart. A halted container ends with status 0; a
    /// restarted one is started afresh from the same directory.
    pub fn run(mut self) -> Result<i32> {
        self.root = checked_root(&self.root)?;
        self.lockdown.check_mapped(&self.maps)?;
        net::check_options(self.network, &self.publish)?;
        let exec = Exec::new(&self.command, self.environment())?;
        let console = if self.console {
            Some(Console::open()?)
        } else {
            None
        };
        let supervisor = Supervisor::new()?;
        loop {
            let status = self.boot(&exec, console.as_ref(), &supervisor)?;
            match supervisor.killed_by() {
                Some(Signal::SIGINT) => return Ok(0),
                Some(Signal::SIGHUP) => continue,
                _ => return Ok(status),
            }
        }
    }

    /// One life of the container, from creating its namespaces to the end of its init.
    fn boot(&self, exec: &Exec, console: Option<&Console>, supervisor: &Supervisor) -> Result<i32> {
        let child = NsChild::spawn(&self.namespaces(), &self.maps, |lifeline| {
            self.init(console, lifeline, exec)
        })?;
        // Ends the container, and the -o hook with what it started, when contain ends, even of
        // SIGKILL: init's parent-death signal does not survive its changes of credentials.
        let watchdog = match Watchdog::guarding(child.pid, false) {
            Ok(watchdog) => watchdog,
            Err(e) => {
                child.abandon();
                return Err(e);
            }
        };
        // What happens outside while the child is held; any failure abandons the child.
        let outside = || -> Result<Option<Pasta>> {
            let pasta = match self.network {
                NetMode::Pasta => Some(Pasta::start(child.pid, &self.publish)?),
                _ => None,
            };
            if let Some(script) = &self.outside_hook {
                let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
                let env = [(INIT_PID_VAR, child.pid.to_string())];
                let group = Some(watchdog.process_group());
                hooks::run_in_group("-o hook", script, &cwd, &env, group)?;
            }
            Ok(pasta)
        };
        // Lives until init has ended: dropping it ends pasta.
        let _pasta = match outside() {
            Ok(pasta) => pasta,
            Err(e) => {
                child.abandon();
                return Err(e);
            }
        };
        let pid = child.release()?;
        match console {
            Some(console) => console.relay(supervisor, pid),
            None => supervisor.wait(pid),
        }
    }

    /// The container's side, as PID 1 and root in the new namespaces: build the root
    /// filesystem, run the inside hook, pivot, attach the console and exec the command.
    fn init(&self, console: Option<&Console>, lifeline: &Lifeline, exec: &Exec) -> Result<i32> {
        let rootfs = Rootfs::bind(&self.root)?;
        rootfs.mount_proc()?;
        rootfs.mount_sys(self.network.new_namespace())?;
        if self.network == NetMode::Private {
            net::bring_up_loopback()?;
        }
        rootfs.mount_dev(console.map(|c| c.slave_path()))?;
        if let Some(script) = &self.inside_hook {
            hooks::run("-i hook", script, &self.root, &[])?;
        }
        rootfs.pivot()?;
        // Find the command while stderr is still ours, so "not found" is reported there.
        exec.resolve()?;
        if let Some(console) = console {
            console.attach()?;
        }
        crate::keyring::join_new_session()?;
        // Last, so that none of our own setup runs with less than full rights; switching user
        // undoes the parent-death signal, so it is armed again.
        if !self.lockdown.is_default() {
            self.lockdown.apply()?;
            lifeline.die_with_parent()?;
        }
        Err(exec.exec())
    }
}

/// The root directory, absolute, checked to be a directory.
fn checked_root(dir: &Path) -> Result<PathBuf> {
    let shown = || crate::errors::shown_os(dir.as_os_str());
    let root = std::fs::canonicalize(dir).with_context(shown)?;
    if !root.is_dir() {
        bail!("{}: Not a directory", shown());
    }
    Ok(root)
}
