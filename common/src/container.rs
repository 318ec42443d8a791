//! A container: what `contain` starts, from the supervisor's side and from init's.

use crate::caps::Lockdown;
use crate::console::Console;
use crate::display::{self, Display, Gui, Handoff};
use crate::hooks;
use crate::idmap::IdMaps;
use crate::mount::{Rootfs, WorkingDirectory};
use crate::net::{self, NetMode, Pasta, PastaSetup, Publish};
use crate::ns::Namespace;
use crate::overlay::Layers;
use crate::process::{Exec, DEFAULT_PATH};
use crate::session::{Session, TERMINAL_SIGNALS};
use crate::supervise::{self, Signal, Supervisor};
use crate::userns::{Lifeline, NsChild};
use crate::watchdog::Watchdog;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Through pasta, the gateway address leads to the host's loopback services.
    pub host_loopback: bool,
    /// Run with /bin/sh -c inside the new namespaces, in the new root, before the pivot.
    pub inside_hook: Option<String>,
    /// Run with /bin/sh -c outside, as the caller, once the namespaces exist.
    pub outside_hook: Option<String>,
    /// Capabilities, user and no_new_privs of the command, applied just before exec.
    pub lockdown: Lockdown,
    /// Layers under and a writable layer over the root (--tmp-overlay, --overlay, --layer).
    pub layers: Option<Layers>,
    /// A display server of the container's own (`--gui`).
    pub gui: Option<Gui>,
    /// How long init may take to end after a stopping signal before it is killed.
    pub stop_timeout: Duration,
}

/// How one start of the container went.
enum Start {
    /// Init ran and ended with this status.
    Ran(i32),
    /// A signal to contain arrived before init was let go: the start was given up.
    Interrupted(Signal),
}

/// The default of `--stop-timeout`, as `docker stop`'s.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

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
        let mut env = vec![
            (MARKER.0.into(), MARKER.1.into()),
            ("PATH".into(), DEFAULT_PATH.into()),
            ("TERM".into(), term),
        ];
        if self.gui.is_some() {
            env.push(("DISPLAY".into(), display::DISPLAY_INSIDE.into()));
            env.push(("XAUTHORITY".into(), display::XAUTHORITY_INSIDE.into()));
        }
        env
    }

    /// Starts the container, supervises it and returns its init's status.
    ///
    /// reboot(2) in a PID namespace ends its init with a signal the init cannot catch: SIGINT
    /// for halt and power-off, SIGHUP for restart. A halted container ends with status 0; a
    /// restarted one is started afresh from the same directory, unless a stopping signal came.
    ///
    /// A signal sent to contain while the container starts ends the start (status 128+N)
    /// with nothing left running; one that comes before the command runs ends init likewise.
    pub fn run(mut self) -> Result<i32> {
        self.root = checked_root(&self.root)?;
        self.lockdown.check_mapped(&self.maps)?;
        net::check_options(self.network, &self.publish, self.host_loopback)?;
        if let Some(gui) = &self.gui {
            if self.host_loopback {
                bail!("--allow-host-loopback does not go with --gui: the host's loopback may lead to an X server");
            }
            display::check(gui, self.network)?;
        }
        // Last of the checks, as it takes STATE for this process.
        if let Some(layers) = &mut self.layers {
            let container_root = self.maps.root_on_host();
            layers.prepare(&self.root, container_root)?;
        }
        let exec = Exec::new(&self.command, self.environment())?;
        let console = if self.console {
            Some(Console::open()?.with_escape())
        } else {
            None
        };
        if let (Some(console), Some((uid, gid))) = (&console, self.maps.root_on_host()) {
            console.give_to(uid, gid)?;
        }
        let supervisor = match console {
            Some(_) => Supervisor::new()?,
            // Init leads a session away from the terminal: ^C goes to its group, as it would.
            None => Supervisor::new()?.passing_to_group(&TERMINAL_SIGNALS),
        }
        .with_stop_timeout(self.stop_timeout);
        loop {
            let status = match self.boot(&exec, console.as_ref(), &supervisor)? {
                Start::Ran(status) => status,
                Start::Interrupted(sig) => return Ok(128 + sig as i32),
            };
            match supervisor.killed_by() {
                Some(Signal::SIGINT) => return Ok(0),
                Some(Signal::SIGHUP) if supervisor.stop_requested() => return Ok(0),
                Some(Signal::SIGHUP) => continue,
                _ => return Ok(status),
            }
        }
    }

    /// One life of the container, from creating its namespaces to the end of its init.
    fn boot(
        &self,
        exec: &Exec,
        console: Option<&Console>,
        supervisor: &Supervisor,
    ) -> Result<Start> {
        // Lives until init has ended: dropping it ends the display server.
        let display = self.start_display()?;
        let handoff = display.as_ref().map(|(_, handoff)| handoff);
        let child = {
            // Init starts in DIR, which it reaches so even where its root may not walk to it.
            let _in_root = WorkingDirectory::enter(&self.root)?;
            NsChild::spawn_locked(
                &self.namespaces(),
                &self.maps,
                || self.setup(console, handoff),
                |lifeline| self.init(console, lifeline, exec, handoff),
            )?
        };
        // Ends the container, and the -o hook with what it started, when contain ends, even of
        // SIGKILL: init's parent-death signal does not survive its changes of credentials.
        let watchdog = match Watchdog::guarding(child.pid, false) {
            Ok(watchdog) => watchdog,
            Err(e) => {
                child.abandon();
                return Err(e);
            }
        };
        // What happens outside while the child is held; any failure abandons the child, and
        // so does a signal to contain (the hook is killed then, and pasta ended).
        let outside = || -> Result<std::result::Result<Option<Pasta>, Signal>> {
            let pasta = match self.network {
                NetMode::Pasta => {
                    let setup = PastaSetup {
                        publish: &self.publish,
                        host_loopback: self.host_loopback,
                        root_on_host: self.maps.root_on_host().unwrap_or((0, 0)),
                    };
                    Some(Pasta::start(child.pid, &setup)?)
                }
                _ => None,
            };
            if let Some(script) = &self.outside_hook {
                let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
                let env = [(INIT_PID_VAR, child.pid.to_string())];
                // In the watchdog's group, which ends with the container even of SIGKILL.
                let group = watchdog.process_group();
                let mut hook = hooks::start("-o hook", script, &cwd, &env, group)?;
                match supervisor.wait_helper(&mut hook, group)? {
                    Ok(status) => hooks::check("-o hook", script, status)?,
                    Err(sig) => return Ok(Err(sig)),
                }
            }
            Ok(match supervisor.interrupted()? {
                Some(sig) => Err(sig),
                None => Ok(pasta),
            })
        };
        // Lives until init has ended: dropping it ends pasta.
        let _pasta = match outside() {
            Ok(Ok(pasta)) => pasta,
            Ok(Err(sig)) => {
                child.abandon();
                return Ok(Start::Interrupted(sig));
            }
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
        .map(Start::Ran)
    }

    /// With `--gui`, the display server, ready, and what init needs to take it over. Through
    /// pasta the host's own addresses would reach an X server listening on TCP: they are
    /// closed inside.
    fn start_display(&self) -> Result<Option<(Display, Handoff)>> {
        let Some(gui) = &self.gui else {
            return Ok(None);
        };
        let blocked = match self.network {
            NetMode::Pasta => net::host_addresses()?,
            _ => Vec::new(),
        };
        let root_on_host = self.maps.root_on_host().unwrap_or((0, 0));
        let title = format!("contain {}", self.root.display());
        let display = Display::start(gui, &title, root_on_host)?;
        let owner = self.lockdown.user().map(|u| (u.uid, u.gid));
        let handoff = display.handoff(owner, blocked);
        Ok(Some((display, handoff)))
    }

    /// The container's mounts, made by root of the outer user namespace in its mount
    /// namespace, before the container's own namespaces exist (see [`NsChild::spawn_locked`]).
    /// Ends in the root built, where init starts.
    ///
    /// This is the lock point: the kernel locks the flags of every mount made here when it
    /// copies this mount namespace for init, and ties each to the mount below it. A mount that
    /// must stay read-only, nosuid, nodev or noexec, or that hides something container root
    /// must not see, is made here, never in [`Container::init`]: a read-only bind made later
    /// can be made writable again by container root, and a mount made later can be unmounted.
    fn setup(&self, console: Option<&Console>, display: Option<&Handoff>) -> Result<()> {
        let rootfs = match &self.layers {
            Some(layers) => layers.mount(&self.root)?,
            None => Rootfs::bind_working_directory(&self.root)?,
        };
        if !self.network.new_namespace() {
            rootfs.bind_host_sys()?;
        }
        rootfs.mount_dev(console.map(|c| c.slave_path()))?;
        if let Some(display) = display {
            display.install(&rootfs)?;
        }
        rootfs.enter()
    }

    /// The container's side, as PID 1 and root in the new namespaces: finish the root
    /// filesystem with what needs the container's own PID and network namespaces, run the
    /// inside hook, pivot, attach the console and exec the command.
    fn init(
        &self,
        console: Option<&Console>,
        lifeline: &Lifeline,
        exec: &Exec,
        display: Option<&Handoff>,
    ) -> Result<i32> {
        // Mounts from here on are container root's own, past the lock point (see setup).
        let rootfs = Rootfs::rebind_working_directory(&self.root)?;
        rootfs.mount_proc()?;
        if self.network.new_namespace() {
            rootfs.mount_own_sys()?;
        }
        if self.network == NetMode::Private {
            net::bring_up_loopback()?;
        }
        if let Some(display) = display {
            display.close_host_addresses()?;
        }
        if let Some(script) = &self.inside_hook {
            rootfs.enter()?;
            hooks::run("-i hook", script, Path::new("."), &[])?;
        }
        rootfs.pivot()?;
        // Find the command while stderr is still ours, so "not found" is reported there.
        exec.resolve()?;
        match console {
            Some(console) => console.attach()?,
            // Off the caller's terminal and process group, as every command: see session.rs.
            None => Session::Detached.enter()?,
        }
        crate::keyring::join_new_session()?;
        // Last, so that none of our own setup runs with less than full rights; switching user
        // undoes the parent-death signal, so it is armed again.
        if !self.lockdown.is_default() {
            self.lockdown.apply()?;
            lifeline.die_with_parent()?;
        }
        // Signals passed on since the release are held (a PID 1 without handlers would lose
        // them): one that came means the container is to end before its command runs.
        if let Some(sig) = supervise::pending_forwarded() {
            return Ok(128 + sig as i32);
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
