//! A container: what `contain` starts, from the supervisor's side and from init's.

use crate::binds::UserMounts;
use crate::caps::Lockdown;
use crate::cgroup::Resources;
use crate::console::Console;
use crate::container_cgroup::{ContainerCgroup, Needs};
use crate::display::{self, Display, Gui, Handoff};
use crate::environment::{self as env, Environment};
use crate::hooks;
use crate::idmap::IdMaps;
use crate::mount::{Rootfs, WorkingDirectory};
use crate::net::{self, NetMode, Pasta, PastaSetup, Publish};
use crate::ns::Namespace;
use crate::overlay::Layers;
use crate::process::{Exec, DEFAULT_PATH};
use crate::registry::{Entry, Registration, Registry};
use crate::session::{Session, TERMINAL_SIGNALS};
use crate::supervise::{self, Signal, Supervisor};
use crate::systemd;
use crate::userns::{Lifeline, LifelinePipe, NsChild};
use crate::watchdog::{Leftover, Watchdog};
use anyhow::{bail, Context, Result};
use std::cell::RefCell;
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
    /// The user's bind mounts and tmpfs (`--bind`, `--ro-bind`, `--tmpfs`).
    pub mounts: UserMounts,
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
    /// The caller's variables for init (`-e`, `--env-file`), over contain's own.
    pub env: Environment,
    /// init's working directory inside (`-w`); None: `/`, or the caller's own in the host's
    /// sandbox, if it has it.
    pub workdir: Option<PathBuf>,
    /// The container's host name (`--hostname`); None leaves the new UTS namespace's, the host's.
    pub hostname: Option<String>,
    /// The name it is registered under (`--name`); without one it is listed by its PID.
    pub name: Option<String>,
    /// The signal the stopping signals reach init as (`--stop-signal`); by default systemd's
    /// halt request for a systemd init, the signal itself for any other.
    pub stop_signal: Option<i32>,
    /// Limits on the container's cgroup (`--memory`, `--pids-limit`, `--cpus`).
    pub limits: Resources,
}

/// What this run of the container found out about its init, and the cgroup made for it.
struct InitSetup {
    /// Init is systemd (see crate::systemd).
    systemd: bool,
    /// systemd's `container_uuid`.
    uuid: Option<String>,
    /// The container's cgroup, if it has one: init's cgroup and the root of its cgroup
    /// namespace.
    cgroup: Option<ContainerCgroup>,
}

/// What every start of one run of a container shares.
struct Run<'a> {
    exec: &'a Exec,
    prepared: &'a InitSetup,
    start_directory: Option<&'a (PathBuf, bool)>,
    console: Option<&'a Console>,
    supervisor: &'a Supervisor,
    /// The caller's registry of names, once opened (see [`Run::registry`]).
    registry: std::cell::OnceCell<Option<Registry>>,
    /// The container's entry in it, once made: before the start with a name, after the first
    /// release of init without one (off the way to init's exec).
    registration: RefCell<Option<Registration>>,
}

impl Run<'_> {
    /// The caller's registry of names, opened on first use: a failure only leaves the
    /// container unlisted, said when the directory is there but refused, silent where there
    /// is no place for one (a container without /run or /tmp).
    fn registry(&self) -> Option<&Registry> {
        self.registry
            .get_or_init(|| match Registry::open_if_possible() {
                Ok(registry) => registry,
                Err(e) => {
                    crate::errors::warn(&format!("not listed: {}", crate::errors::one_line(&e)));
                    None
                }
            })
            .as_ref()
    }

    /// What contain leaves on the host, for the watchdog to remove if contain is killed: its
    /// entry in the registry (named `name`, or by its PID), and the cgroups it made.
    fn leftovers(&self, name: Option<&str>) -> Vec<Leftover> {
        self.registry()
            .map(|r| Leftover::Entry(r.removal(name)))
            .into_iter()
            .chain(
                self.prepared
                    .cgroup
                    .as_ref()
                    .map(|c| Leftover::Cgroups(c.leftover())),
            )
            .collect()
    }
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

    /// True for the host's own system under a throw-away layer (`--tmp-overlay /`).
    fn is_host_sandbox(&self) -> bool {
        self.root == Path::new("/") && self.layers.is_some()
    }

    /// Finds out whether init is systemd (in DIR or, with layers, below it) and prepares what
    /// that and the limits need: CAP_SYS_MODULE and CAP_SYS_RAWIO withheld from systemd, its
    /// UUID, and the container's cgroup, or the refusal when there is none to be had.
    fn prepare_init(&mut self) -> Result<InitSetup> {
        let roots: Vec<&Path> = std::iter::once(self.root.as_path())
            .chain(
                self.layers
                    .iter()
                    .flat_map(|l| l.lower.iter().rev().map(PathBuf::as_path)),
            )
            .collect();
        let systemd = systemd::is_systemd(&roots, &self.command[0]);
        if systemd {
            for cap in systemd::WITHHELD_CAPABILITIES {
                self.lockdown = self.lockdown.clone().withholding(cap);
            }
        }
        let needs = Needs {
            systemd,
            limits: self.limits,
        };
        Ok(InitSetup {
            systemd,
            uuid: systemd.then(systemd::new_uuid).transpose()?,
            cgroup: ContainerCgroup::set_up(needs, self.maps.root_on_host())?,
        })
    }

    /// The clean environment init starts with, the caller's `-e` and `--env-file` over it
    /// (HOME and USER of the user inside are added by init, from the container's
    /// /etc/passwd, unless given); systemd's `container_uuid` too.
    fn environment(&self, prepared: &InitSetup) -> Environment {
        let mut env = if self.is_host_sandbox() {
            env::host_sandbox()
        } else {
            Environment::new()
        };
        env::set(&mut env, MARKER.0, MARKER.1.into());
        env::set_default(&mut env, "PATH", DEFAULT_PATH);
        let term = std::env::var("TERM").unwrap_or_else(|_| "linux".into());
        env::set_default(&mut env, "TERM", term);
        if self.gui.is_some() {
            env::set(&mut env, "DISPLAY", display::DISPLAY_INSIDE.into());
            env::set(&mut env, "XAUTHORITY", display::XAUTHORITY_INSIDE.into());
        }
        if let Some(uuid) = &prepared.uuid {
            env::set(&mut env, systemd::UUID_VARIABLE, uuid.clone());
        }
        env::extend(&mut env, &self.env);
        env
    }

    /// Where init starts inside, and whether it must exist (`-w`) or may fall back to `/` (the
    /// caller's own directory in the host's sandbox, which may be under the fresh /tmp).
    fn start_directory(&self) -> Option<(PathBuf, bool)> {
        match &self.workdir {
            Some(dir) => Some((dir.clone(), true)),
            None if self.is_host_sandbox() => std::env::current_dir().ok().map(|d| (d, false)),
            None => None,
        }
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
        // Refused here, before anything starts, when init needs a cgroup there is none of.
        let prepared = self.prepare_init()?;
        // A name is taken before anything starts; a container without one is registered
        // once init runs (see Container::register_once).
        let registry = std::cell::OnceCell::new();
        let mut registration = None;
        if let Some(name) = &self.name {
            let opened = Registry::open()?;
            let entry = Entry::of_this_process(Some(name.clone()), &self.root, &self.command);
            registration = Some(opened.register(&entry)?);
            let _ = registry.set(Some(opened));
        }
        let exec = Exec::new(&self.command, self.environment(&prepared))?;
        let start_directory = self.start_directory();
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
        .with_stop_timeout(self.stop_timeout)
        .with_stop_signal(
            self.stop_signal
                .or(prepared.systemd.then_some(systemd::HALT_SIGNAL)),
        );
        let run = Run {
            exec: &exec,
            prepared: &prepared,
            start_directory: start_directory.as_ref(),
            console: console.as_ref(),
            supervisor: &supervisor,
            registry,
            registration: RefCell::new(registration),
        };
        loop {
            let status = match self.boot(&run)? {
                Start::Ran(status) => status,
                Start::Interrupted(sig) => return Ok(128 + sig as i32),
            };
            match supervisor.killed_by() {
                Some(Signal::SIGINT) => return Ok(0),
                Some(Signal::SIGHUP) if supervisor.stop_requested() => return Ok(0),
                Some(Signal::SIGHUP) => {
                    if let Some(cgroup) = &prepared.cgroup {
                        cgroup.reset()?;
                    }
                    continue;
                }
                _ => return Ok(status),
            }
        }
    }

    /// One life of the container, from creating its namespaces to the end of its init.
    fn boot(&self, run: &Run) -> Result<Start> {
        let (console, supervisor) = (run.console, run.supervisor);
        // The watchdog is made while init is held when something outside must be guarded
        // from the start: the -o hook (which joins its process group) or a display (whose
        // private directory on the host it removes should contain be killed). Otherwise it is
        // made once init runs, beside init's own setup rather than before it: init waits for
        // it only before it changes credentials or execs (see Container::init), and until
        // then its parent-death signal ends it with contain.
        let early = self.outside_hook.is_some() || self.gui.is_some();
        let mut early_watchdog = match early {
            true => Some(Watchdog::start(true, run.leftovers(self.name.as_deref()))?),
            false => None,
        };
        // Lives until init has ended: dropping it ends the display server.
        let display = self.start_display(early_watchdog.as_mut())?;
        let handoff = display.as_ref().map(|(_, handoff)| handoff);
        let guarded_pipe = LifelinePipe::new()?;
        let two_stages = self.needs_two_stages(run.prepared);
        let child = {
            // Init starts in DIR, which it reaches so even where its root may not walk to it.
            let _in_root = WorkingDirectory::enter(&self.root)?;
            let setup = || self.setup(console, handoff, run.prepared.systemd);
            let init = |lifeline: &Lifeline| {
                let guarded = guarded_pipe.child();
                self.init(run, lifeline, &guarded, handoff, two_stages)
            };
            if two_stages {
                NsChild::spawn_locked(
                    &self.namespaces(),
                    &self.maps,
                    // The container's cgroup, placed before its namespaces are made: the root
                    // of its cgroup namespace, and init's cgroup.
                    |setup_pid| match &run.prepared.cgroup {
                        Some(cgroup) => cgroup.place(setup_pid),
                        None => Ok(()),
                    },
                    setup,
                    init,
                )?
            } else {
                // One stage: init makes the mounts itself, let go at once where it may write
                // its maps itself (nothing is done outside while it is held).
                NsChild::spawn_running(&self.namespaces(), &self.maps, |lifeline| {
                    setup()?;
                    init(lifeline)
                })?
            }
        };
        let guarded = guarded_pipe.parent();
        // A pidfd of init while it is held, and so cannot have ended and been reaped.
        let target = match crate::process::pidfd_open(child.pid.as_raw()) {
            Ok(fd) => fd,
            Err(e) => {
                child.abandon();
                return Err(e).context("opening a pidfd of init");
            }
        };
        // Ends the container, and the -o hook with what it started, when contain ends, even of
        // SIGKILL: init's parent-death signal does not survive its changes of credentials.
        let early_watchdog = match early_watchdog {
            Some(mut watchdog) => match watchdog.guard(child.pid, false) {
                Ok(()) => Some(watchdog),
                Err(e) => {
                    child.abandon();
                    return Err(e);
                }
            },
            None => None,
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
            if let (Some(script), Some(watchdog)) = (&self.outside_hook, &early_watchdog) {
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
        let watchdog = match early_watchdog {
            Some(watchdog) => Ok(watchdog),
            None => {
                let leftovers = run.leftovers(self.name.as_deref());
                Watchdog::guarding_pidfd(pid, target, false, leftovers)
            }
        };
        let watchdog = match watchdog {
            Ok(watchdog) => watchdog,
            Err(e) => {
                // Init, which waits for the word below, ends at the pipe's end.
                drop(guarded);
                crate::process::kill_and_reap(pid);
                return Err(e);
            }
        };
        // EPIPE: init has ended already (it failed, and said why): its status tells.
        match nix::unistd::write(&guarded, &[1]) {
            Ok(_) | Err(nix::errno::Errno::EPIPE) => {}
            Err(e) => {
                crate::process::kill_and_reap(pid);
                return Err(e).context("releasing init");
            }
        }
        // After the watchdog, which removes the entry should contain be killed, and after init
        // has its word, so that init does not wait for it.
        self.register_once(run);
        // Looked after while init runs: one that died is replaced (see watchdog.rs).
        supervisor.guarded_by(watchdog);
        let status = match console {
            Some(console) => console.relay(supervisor, pid),
            None => supervisor.wait(pid),
        };
        drop(supervisor.take_watchdog());
        status.map(Start::Ran)
    }

    /// Registers a container without a name, once, after its first release (a failure only
    /// leaves it unlisted).
    fn register_once(&self, run: &Run) {
        let (Some(registry), None) = (run.registry(), &self.name) else {
            return;
        };
        let mut registration = run.registration.borrow_mut();
        if registration.is_some() {
            return;
        }
        match registry.register(&Entry::of_this_process(None, &self.root, &self.command)) {
            Ok(made) => *registration = Some(made),
            Err(e) => crate::errors::warn(&format!("not listed: {}", crate::errors::one_line(&e))),
        }
    }

    /// With `--gui`, the display server, ready, and what init needs to take it over. Through
    /// pasta the host's own addresses would reach an X server listening on TCP: they are
    /// closed inside. The watchdog learns of the display's private directory before it
    /// exists.
    fn start_display(&self, watchdog: Option<&mut Watchdog>) -> Result<Option<(Display, Handoff)>> {
        let Some(gui) = &self.gui else {
            return Ok(None);
        };
        let blocked = match self.network {
            NetMode::Pasta => net::host_addresses()?,
            _ => Vec::new(),
        };
        let root_on_host = self.maps.root_on_host().unwrap_or((0, 0));
        let title = format!("contain {}", self.root.display());
        let display = match watchdog {
            Some(watchdog) => Display::start(gui, &title, root_on_host, &mut |dir| {
                watchdog.leave_behind(dir)
            })?,
            None => Display::start(gui, &title, root_on_host, &mut |_| Ok(()))?,
        };
        let owner = self.lockdown.user().map(|u| (u.uid, u.gid));
        let handoff = display.handoff(owner, blocked);
        Ok(Some((display, handoff)))
    }

    /// True when the container starts in two stages ([`NsChild::spawn_locked`]): when a mount
    /// of [`Container::setup`] must be locked, or init must be held with its mounts made.
    ///
    /// Locked: the root's layers (the lower layers, the host sandbox's read-only binds and the
    /// fresh /tmp over the host's), the host's /sys (`-n`), the user's binds and tmpfs,
    /// systemd's /run and a display's socket. Without them setup makes only DIR's bind onto
    /// itself (the container's `/` once pivoted, with nothing below it) and /dev, a tmpfs of
    /// the container's own with the six device nodes bound from the host's /dev and its own
    /// devpts and /dev/shm: container root unmounting one of these uncovers nothing but the
    /// empty file or directory of its own /dev under it, and the flags of the host's mounts
    /// (read-only, nosuid, nodev, noexec) stay locked on DIR's bind and the device nodes
    /// anyway: the kernel locked them when it copied the host's mount namespace, and a bind
    /// keeps them. /proc and a new sysfs are mounted by init, past the lock point, either way.
    ///
    /// Held: pasta and the `-o` hook are started while init is held, after setup (the hook may
    /// look at the container's mounts), and the container's cgroup is entered before its
    /// cgroup namespace is made. In one stage ([`NsChild::spawn_running`]) init is held only
    /// before setup, or not at all where it writes its maps itself, and then goes on to its
    /// command: one process, one user namespace, one copy of the host's mount table and two
    /// or three hand-overs between processes fewer on the way to init's exec, and no wait for
    /// the first stage's end (the teardown of its mount namespace waits for an RCU grace
    /// period).
    fn needs_two_stages(&self, prepared: &InitSetup) -> bool {
        let locked = self.layers.is_some()
            || !self.network.new_namespace()
            || !self.mounts.is_empty()
            || prepared.systemd
            || self.gui.is_some();
        let held = self.network == NetMode::Pasta
            || self.outside_hook.is_some()
            || prepared.cgroup.is_some();
        locked || held
    }

    /// The container's mounts, made by root of the outer user namespace in its mount
    /// namespace, before the container's own namespaces exist (see [`NsChild::spawn_locked`]);
    /// when none needs locking, by init itself (see [`Container::needs_two_stages`]). Ends in
    /// the root built, where init starts.
    ///
    /// This is the lock point: the kernel locks the flags of every mount made here when it
    /// copies this mount namespace for init, and ties each to the mount below it. A mount that
    /// must stay read-only, nosuid, nodev or noexec, or that hides something container root
    /// must not see, is made here, never in [`Container::init`]: a read-only bind made later
    /// can be made writable again by container root, and a mount made later can be unmounted.
    fn setup(
        &self,
        console: Option<&Console>,
        display: Option<&Handoff>,
        systemd: bool,
    ) -> Result<()> {
        // Opened before the root is built: the host sandbox covers the host's /tmp.
        let display = display.map(Handoff::open).transpose()?;
        // Before the root's own mounts, which may cover a SRC (see binds.rs).
        let sources = self.mounts.open_sources()?;
        let rootfs = match &self.layers {
            Some(layers) => layers.mount(&self.root)?,
            None => Rootfs::bind_working_directory(&self.root)?,
        };
        if !self.network.new_namespace() {
            rootfs.bind_host_sys()?;
        }
        rootfs.mount_dev(console.map(|c| c.slave_path()))?;
        if systemd {
            systemd::mount_run(&rootfs)?;
        }
        if let Some(display) = &display {
            display.install(&rootfs)?;
        }
        // The user's own (--bind, --ro-bind, --tmpfs): a read-only one stays so.
        self.mounts.mount(&rootfs, sources)?;
        rootfs.enter()
    }

    /// The container's side, as PID 1 and root in the new namespaces: finish the root
    /// filesystem with what needs the container's own PID and network namespaces, run the
    /// inside hook, pivot, attach the console and exec the command.
    fn init(
        &self,
        run: &Run,
        lifeline: &Lifeline,
        guarded: &Lifeline,
        display: Option<&Handoff>,
        two_stages: bool,
    ) -> Result<i32> {
        let (console, exec, start_directory) = (run.console, run.exec, run.start_directory);
        // Mounts from here on are container root's own, past the lock point (see setup). In
        // one stage, setup ran here and the root it built is a mount of this namespace.
        let rootfs = match two_stages {
            true => Rootfs::rebind_working_directory(&self.root)?,
            false => Rootfs::working_directory(&self.root)?,
        };
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
        if let Some(name) = &self.hostname {
            nix::unistd::sethostname(name).context("setting the host name")?;
        }
        match start_directory {
            Some((dir, true)) => nix::unistd::chdir(dir.as_path())
                .map_err(|e| anyhow::anyhow!("-w {}: {}", dir.display(), e.desc()))?,
            Some((dir, false)) => {
                let _ = nix::unistd::chdir(dir.as_path());
            }
            None => {}
        }
        let mut exec = exec.clone();
        let (name, home) = env::user_inside(self.lockdown.user().map_or(0, |u| u.uid));
        exec.set_default_env("HOME", &home);
        if let Some(name) = name {
            exec.set_default_env("USER", &name);
        }
        // Find the command while stderr is still ours, so "not found" is reported there.
        exec.resolve()?;
        match console {
            Some(console) => console.attach()?,
            // Off the caller's terminal and process group, as every command: see session.rs.
            None => Session::Detached.enter()?,
        }
        crate::keyring::join_new_session()?;
        // The watchdog guards us before anything here can clear the parent-death signal (a
        // change of credentials, an exec of a set-user-ID program): see Container::boot.
        if !guarded.released() {
            return Ok(crate::errors::FAILURE);
        }
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
