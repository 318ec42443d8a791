//! `create`: the container's process is made in its namespaces, builds its root, and waits for
//! `start` with everything set up; `create` then exits, leaving it to the engine's subreaper
//! (conmon, the shim), whose child it becomes. Nothing of ours stays its parent or holds its
//! standard descriptors.
//!
//! The runtime and the process talk over two channels: a pipe on which the process reports,
//! once, that it is ready or why it failed (so the failure is create's, with nothing left
//! behind), and a listening unix socket in the state directory, `start.sock`, on which it
//! waits: `start` connects, the process answers with one byte and goes on to exec. The socket
//! needs no path inside the container and no permission there: the process holds the
//! listening descriptor from before its pivot.

use super::bundle::Bundle;
use super::mounts;
use super::report::{ReportPipe, Reporter};
use super::state::{self, ContainerDir, Saved, START_SOCKET};
use super::terminal;
use crate::caps::{mask_of_names, Credentials};
use crate::idmap::{IdMap, IdMaps, IdRange};
use crate::mount::{Rootfs, WorkingDirectory};
use crate::ns::Namespace;
use crate::process::Exec;
use crate::userns::{Lifeline, NsChild};
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Process, Spec};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What `create` (and `run`) are asked.
pub struct CreateOptions {
    /// `--root`: where containers' state directories are.
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// A connection to send the terminal over instead of `console_socket` (`run` in the
    /// foreground keeps the other end).
    pub console_connection: Option<OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: cgroupsPath is systemd's `slice:prefix:name`.
    pub systemd_cgroup: bool,
}

/// A created container: its process waits for `start`.
pub struct Created {
    pub pid: i32,
    /// Its process has a terminal (sent over the console socket).
    pub terminal: bool,
}

/// Creates the container. On failure nothing is left: no process, no state directory.
pub fn create(options: &CreateOptions) -> Result<Created> {
    let bundle = Bundle::load(&options.bundle)?;
    let process = bundle
        .spec
        .process()
        .as_ref()
        .expect("checked by Bundle::load");
    if process.terminal() == Some(true)
        && options.console_socket.is_none()
        && options.console_connection.is_none()
    {
        bail!("process.terminal is true: a terminal needs --console-socket");
    }
    let plan = Plan::of(&bundle.spec)?;
    super::labels::warn_mount_label(&bundle.spec);
    let dir = ContainerDir::create(&options.root, &options.id)?;
    // Made while this process may still write the host's cgroups (before it joins any
    // namespace), and with the resources written before any process is in them.
    let mut cgroups = match super::cgroups::Placement::create(
        &bundle.spec,
        options.systemd_cgroup,
        &options.id,
    ) {
        Ok(cgroups) => cgroups,
        Err(e) => {
            let _ = dir.remove();
            return Err(e);
        }
    };
    match create_in(&dir, &bundle, &plan, options, cgroups.as_mut()) {
        Ok(created) => Ok(created),
        Err(e) => {
            if let Some(cgroups) = &cgroups {
                cgroups.remove();
            }
            let _ = dir.remove();
            Err(e)
        }
    }
}

/// The namespaces to make and to join, and the maps of a new user namespace.
struct Plan {
    new: Vec<Namespace>,
    joined: Vec<(Namespace, PathBuf)>,
    maps: Option<IdMaps>,
}

fn kind_of(typ: LinuxNamespaceType) -> Namespace {
    match typ {
        LinuxNamespaceType::Mount => Namespace::Mount,
        LinuxNamespaceType::Cgroup => Namespace::Cgroup,
        LinuxNamespaceType::Uts => Namespace::Uts,
        LinuxNamespaceType::Ipc => Namespace::Ipc,
        LinuxNamespaceType::User => Namespace::User,
        LinuxNamespaceType::Pid => Namespace::Pid,
        LinuxNamespaceType::Network => Namespace::Net,
        LinuxNamespaceType::Time => Namespace::Time,
    }
}

fn id_map(field: &str, mappings: &Option<Vec<LinuxIdMapping>>) -> Result<IdMap> {
    let ranges: Vec<IdRange> = mappings
        .iter()
        .flatten()
        .map(|m| IdRange {
            inside: m.container_id(),
            outside: m.host_id(),
            count: m.size(),
        })
        .collect();
    if ranges.is_empty() {
        bail!("linux.{field}: a new user namespace needs {field}");
    }
    IdMap::new(ranges).with_context(|| format!("linux.{field}"))
}

impl Plan {
    fn of(spec: &Spec) -> Result<Plan> {
        let mut plan = Plan {
            new: Vec::new(),
            joined: Vec::new(),
            maps: None,
        };
        let Some(linux) = spec.linux() else {
            bail!("linux: missing (a Linux container needs its namespaces listed)");
        };
        for ns in linux.namespaces().iter().flatten() {
            let kind = kind_of(ns.typ());
            match ns.path() {
                Some(path) => plan.joined.push((kind, path.clone())),
                None => plan.new.push(kind),
            }
        }
        if plan.new.contains(&Namespace::User) {
            let uid = id_map("uidMappings", linux.uid_mappings())?;
            let gid = id_map("gidMappings", linux.gid_mappings())?;
            plan.maps = Some(IdMaps { uid, gid });
        } else if !plan.joined.iter().any(|(ns, _)| *ns == Namespace::User)
            && !nix::unistd::geteuid().is_root()
        {
            bail!(
                "linux.namespaces: no user namespace listed, and only root may make the \
                 others: list one with uidMappings and gidMappings (contain-oci spec --rootless)"
            );
        }
        if plan.new.contains(&Namespace::Time) && !Path::new("/proc/self/ns/time").exists() {
            bail!("linux.namespaces: this kernel has no time namespaces (Linux 5.6 or later)");
        }
        Ok(plan)
    }

    fn has_new(&self, kind: Namespace) -> bool {
        self.new.contains(&kind)
    }
}

/// The environment of a process as (name, value) pairs.
pub fn environment(process: &Process) -> Vec<(String, String)> {
    process
        .env()
        .iter()
        .flatten()
        .filter_map(|var| {
            let (name, value) = var.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

/// The credentials a process asks for. Capability sets left out are empty, as runc reads them.
pub fn credentials(process: &Process) -> Result<Credentials> {
    let caps = process.capabilities().as_ref();
    let mask = |set: Option<&oci_spec::runtime::Capabilities>, field: &str| -> Result<u64> {
        let names = set.into_iter().flatten().map(|c| format!("CAP_{c}"));
        mask_of_names(names).with_context(|| format!("process.capabilities.{field}"))
    };
    let user = process.user();
    Ok(Credentials {
        bounding: mask(caps.and_then(|c| c.bounding().as_ref()), "bounding")?,
        effective: mask(caps.and_then(|c| c.effective().as_ref()), "effective")?,
        permitted: mask(caps.and_then(|c| c.permitted().as_ref()), "permitted")?,
        inheritable: mask(caps.and_then(|c| c.inheritable().as_ref()), "inheritable")?,
        ambient: mask(caps.and_then(|c| c.ambient().as_ref()), "ambient")?,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        no_new_privs: process.no_new_privileges().unwrap_or(false),
    })
}

/// Joins the namespaces a config names by path, user namespace first: done by the runtime
/// before it makes the process, which then starts in them (a joined PID or time namespace
/// only places children). A joined mount namespace is left to the process itself.
fn join_by_path(joined: &[(Namespace, PathBuf)]) -> Result<()> {
    for kind in Namespace::JOIN_ORDER {
        if kind == Namespace::Mount {
            continue;
        }
        if let Some((_, path)) = joined.iter().find(|(ns, _)| *ns == kind) {
            join(kind, path)?;
        }
    }
    Ok(())
}

fn join(kind: Namespace, path: &Path) -> Result<()> {
    let file = File::open(path)
        .with_context(|| format!("linux.namespaces: opening {}", path.display()))?;
    let flag = nix::sched::CloneFlags::from_bits_retain(kind.flag() as i32);
    nix::sched::setns(file.as_fd(), flag).with_context(|| {
        format!(
            "linux.namespaces: joining the {} {}",
            kind.describe(),
            path.display()
        )
    })
}

fn create_in(
    dir: &ContainerDir,
    bundle: &Bundle,
    plan: &Plan,
    options: &CreateOptions,
    mut cgroups: Option<&mut super::cgroups::Placement>,
) -> Result<Created> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("checked by Bundle::load");
    let console = match (&options.console_socket, process.terminal()) {
        (Some(path), Some(true)) => Some(terminal::connect(path)?),
        (None, Some(true)) => match &options.console_connection {
            Some(connection) => Some(connection.try_clone()?),
            None => None,
        },
        _ => None,
    };
    let listener = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating the start socket")?;
    bind(
        listener.as_raw_fd(),
        &UnixAddr::new(&dir.short_path(START_SOCKET))?,
    )
    .with_context(|| format!("binding {}", dir.path.join(START_SOCKET).display()))?;
    listen(&listener, Backlog::new(1)?).context("listening on the start socket")?;
    let report = ReportPipe::new()?;
    let exec = Exec::new(
        process.args().as_deref().unwrap_or(&[]),
        environment(process),
    )?;
    let creds = credentials(process)?;
    let linux = spec.linux().as_ref().expect("checked by Plan::of");
    let filter = super::filter::compile(linux.seccomp().as_ref())?;

    #[allow(deprecated)]
    let (runtime_hooks, container_hooks) = match spec.hooks() {
        Some(h) => {
            let list = |l: &Option<Vec<oci_spec::runtime::Hook>>| l.clone().unwrap_or_default();
            let mut runtime = list(h.prestart());
            runtime.extend(list(h.create_runtime()));
            let container =
                !list(h.create_container()).is_empty() || !list(h.start_container()).is_empty();
            (runtime, container)
        }
        None => (Vec::new(), false),
    };
    // The state the container's own hooks get, written by the runtime once the process's
    // PID is known, read by the process before it goes on.
    let (hook_state_read, hook_state_write) = if container_hooks {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        (Some(read), Some(write))
    } else {
        (None, None)
    };
    join_by_path(&plan.joined)?;
    // A new cgroup namespace is made by the process itself once it is in its cgroup, so that
    // its cgroups are the namespace's root.
    let new_namespaces: Vec<Namespace> = plan
        .new
        .iter()
        .copied()
        .filter(|ns| *ns != Namespace::Cgroup)
        .collect();
    let flags = Namespace::flags(&new_namespaces);
    let mut inherited = dir.descriptors();
    // The state pipe's write end is the runtime's: a copy left open in the process would keep
    // its read from ever ending.
    inherited.extend(hook_state_write.as_ref().map(|fd| fd.as_raw_fd()));
    let init = Init {
        bundle,
        plan,
        options,
        exec: &exec,
        creds: &creds,
        filter: filter.as_ref(),
        console: console.as_ref(),
        listener: &listener,
        hook_state: hook_state_read.as_ref(),
        labels: super::labels::of(spec.process().as_ref().expect("checked by Bundle::load")),
    };
    let child = {
        // The process starts in the root directory, which it reaches so even where its
        // credentials could not walk the path to it.
        let _in_root = WorkingDirectory::enter(&bundle.rootfs)?;
        NsChild::spawn_detached(flags, plan.maps.as_ref(), |lifeline| {
            for fd in &inherited {
                // SAFETY: the child's copies of the lock's descriptors and of the state pipe's
                // write end: closing them releases nothing the parent holds, and nothing in
                // the child uses them.
                unsafe { libc::close(*fd) };
            }
            let mut reporter = report.child();
            let err = match init.run(&mut reporter, lifeline) {
                Ok(code) => return Ok(code),
                Err(e) => e,
            };
            if reporter.failed(&err) {
                return Ok(1);
            }
            // After the report, create has exited: the process's own stderr is left.
            crate::errors::report(&crate::errors::one_line(&err));
            Ok(crate::errors::status_of(&err))
        })?
    };
    drop(listener);
    drop(console);
    drop(hook_state_read);
    let pid = child.pid;
    if let Some(cgroups) = cgroups.as_deref_mut() {
        // Before it runs: its mounts and everything it execs are accounted there.
        if let Err(e) = cgroups.add(pid.as_raw()) {
            child.abandon();
            return Err(e);
        }
    }
    if !runtime_hooks.is_empty() || hook_state_write.is_some() {
        let state = serde_json::json!({
            "ociVersion": state::OCI_VERSION,
            "id": options.id,
            // As crun has it (runc says "creating"): runtime-tools' hooks_stdin wants
            // "created" for prestart.
            "status": "created",
            "pid": pid.as_raw(),
            "bundle": bundle.dir,
            "annotations": spec.annotations().clone().unwrap_or_default(),
        });
        // prestart and createRuntime: in the runtime's namespaces, once the container's exist.
        let run = super::hooks::run("createRuntime", &runtime_hooks, &state).and_then(|()| {
            if let Some(write) = hook_state_write {
                File::from(write).write_all(state.to_string().as_bytes())?;
            }
            Ok(())
        });
        if let Err(e) = run {
            child.abandon();
            return Err(e);
        }
    }
    let (_, lifeline) = child.release_keeping()?;
    if let Err(e) = report.wait("the container's process ended before it was ready") {
        crate::process::kill_and_reap(pid);
        return Err(e);
    }
    let pid = pid.as_raw();
    let result = (|| {
        let annotations = spec.annotations().clone().unwrap_or_default();
        let mut saved = Saved::new(&options.id, pid, &bundle.dir, &bundle.rootfs, annotations)?;
        saved.cgroups = cgroups.as_ref().map(|c| c.paths()).unwrap_or_default();
        saved.systemd_scope = cgroups.as_ref().and_then(|c| c.systemd_scope().cloned());
        if let Some(hooks) = spec.hooks() {
            saved.poststart = hooks.poststart().clone().unwrap_or_default();
            saved.poststop = hooks.poststop().clone().unwrap_or_default();
        }
        dir.save(&saved)?;
        if let Some(pid_file) = &options.pid_file {
            state::write_atomically(pid_file, pid.to_string().as_bytes())?;
        }
        // The last word: the state is saved, the process may wait for start. Without it (create
        // killed before this point) the process ends instead of waiting for ever.
        nix::unistd::write(&lifeline, &[1]).context("confirming the container")?;
        Ok(Created {
            pid,
            terminal: process.terminal() == Some(true),
        })
    })();
    if result.is_err() {
        crate::process::kill_and_reap(nix::unistd::Pid::from_raw(pid));
    }
    result
}

/// The container's side of create.
struct Init<'a> {
    bundle: &'a Bundle,
    plan: &'a Plan,
    options: &'a CreateOptions,
    exec: &'a Exec,
    creds: &'a Credentials,
    filter: Option<&'a crate::seccomp::Filter>,
    console: Option<&'a OwnedFd>,
    listener: &'a OwnedFd,
    /// Where the state for createContainer and startContainer hooks comes from.
    hook_state: Option<&'a OwnedFd>,
    labels: super::labels::Labels,
}

impl Init<'_> {
    fn run(&self, report: &mut Reporter<'_>, lifeline: &Lifeline<'_>) -> Result<i32> {
        let spec = &self.bundle.spec;
        let process = spec.process().as_ref().expect("checked by Bundle::load");
        let linux = spec.linux().as_ref().expect("checked by Plan::of");
        if self.plan.maps.is_some() {
            crate::userns::become_root()?;
        }
        if self.plan.has_new(Namespace::Cgroup) {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                .context("creating a cgroup namespace")?;
        }
        let hook_state = match self.hook_state {
            Some(fd) => {
                let mut text = String::new();
                File::from(fd.try_clone()?)
                    .read_to_string(&mut text)
                    .context("reading the state for hooks")?;
                serde_json::from_str(&text).context("reading the state for hooks")?
            }
            None => serde_json::Value::Null,
        };
        #[allow(deprecated)]
        let hooks = spec.hooks().clone().unwrap_or_default();
        let joined_mount = self
            .plan
            .joined
            .iter()
            .find(|(ns, _)| *ns == Namespace::Mount);
        if let Some((_, path)) = joined_mount {
            join(Namespace::Mount, path)?;
            // setns left the process at the joined namespace's root: the root file system is
            // that namespace's copy, found by its path there.
            crate::mount::open_dir_without_links(&self.bundle.rootfs)
                .and_then(|dir| nix::unistd::fchdir(&dir))
                .with_context(|| {
                    format!(
                        "root.path: {} in the joined mount namespace",
                        self.bundle.rootfs.display()
                    )
                })?;
        }
        // Without a mount namespace of its own the process shares its caller's mounts: it
        // mounts nothing and pivots nothing there, it only chroots (as crun does).
        let own_mounts = joined_mount.is_some() || self.plan.has_new(Namespace::Mount);
        if let Some(score) = process.oom_score_adj() {
            std::fs::write("/proc/self/oom_score_adj", score.to_string())
                .context("process.oomScoreAdj: writing /proc/self/oom_score_adj")?;
        }
        // Device nodes can be made only by real root, outside any user namespace.
        let may_mknod = self.plan.maps.is_none()
            && crate::idmap::is_initial(&crate::idmap::own_namespace(crate::idmap::IdKind::User));
        let rootfs = if own_mounts {
            let rootfs = Rootfs::bind_working_directory(&self.bundle.rootfs)?;
            mounts::mount_all(
                &rootfs,
                spec.mounts().as_deref().unwrap_or(&[]),
                &self.bundle.dir,
            )?;
            rootfs
        } else {
            if let Some(warning) = unapplied_without_mount_namespace(spec, may_mknod) {
                super::log::warn(&warning);
            }
            Rootfs::working_directory(&self.bundle.rootfs)?
        };
        mounts::make_devices(
            &rootfs,
            linux.devices().as_deref().unwrap_or(&[]),
            may_mknod,
            own_mounts,
        )?;
        // Made before the root may become read-only, inside the root (as runc does).
        let cwd = process.cwd().to_string_lossy();
        if rootfs.resolve(&cwd).is_err() {
            rootfs
                .mount_point(&cwd, crate::mount::Kind::Directory)
                .context("process.cwd")?;
        }
        self.set_names(spec)?;
        // In the container's namespaces, before the pivot: the hooks' paths are the host's.
        if let Some(list) = hooks.create_container() {
            super::hooks::run("createContainer", list, &hook_state)?;
        }
        if !own_mounts {
            rootfs.chroot()?;
        } else if self.options.no_pivot {
            move_root(rootfs)?;
        } else {
            rootfs.pivot()?;
        }
        if own_mounts {
            mounts::mask_and_protect(
                linux.masked_paths().as_deref().unwrap_or(&[]),
                linux.readonly_paths().as_deref().unwrap_or(&[]),
            )?;
        }
        if let Some(sysctl) = linux.sysctl() {
            mounts::write_sysctls(sysctl)?;
        }
        if own_mounts && spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
            let root = crate::mount::open_dir(Path::new("/"))?;
            crate::mount::remount_bind(root.as_fd(), nix::mount::MsFlags::MS_RDONLY)
                .map_err(|e| anyhow!("root.readonly: remounting / read-only: {}", e.desc()))?;
        }
        if let Some(name) = linux.rootfs_propagation().as_ref().filter(|_| own_mounts) {
            let flags = mounts::propagation(name)
                .ok_or_else(|| anyhow!("linux.rootfsPropagation: unknown value '{name}'"))?;
            nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .context("linux.rootfsPropagation")?;
        }
        set_rlimits(process)?;
        if let Some(personality) = linux.personality() {
            set_personality(personality)?;
        }
        match self.console {
            Some(socket) => {
                let size = process
                    .console_size()
                    .map(|b| (b.height() as u16, b.width() as u16));
                terminal::attach_new_pty(socket, size)?;
            }
            None => {
                nix::unistd::setsid().context("starting a session")?;
            }
        }
        if !self.options.no_new_keyring {
            crate::keyring::join_new_session()?;
        }
        if let Some(umask) = process.user().umask() {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
        }
        enter_cwd(process.cwd())?;
        // Found now, so that a command that does not exist fails create, as in runc.
        self.exec.resolve()?;
        report.ready()?;
        if !lifeline.released() {
            // create failed or was killed after the report: nothing is to wait for start.
            return Ok(1);
        }
        // Held until exec closes it: start returns once the command runs, so that a signal
        // sent after start reaches the command (a signal to PID 1 of a PID namespace before
        // the command has a handler for it would be lost).
        let _start = wait_for_start(self.listener)?;
        if let Some(list) = hooks.start_container() {
            super::hooks::run("startContainer", list, &hook_state)?;
        }
        self.labels.apply()?;
        super::filter::lock_down(self.creds, self.filter)?;
        Err(self.exec.exec_preserving(self.options.preserve_fds))
    }

    /// hostname and domainname, which need a UTS namespace listed in linux.namespaces: a new
    /// one, or one joined by path, whose names they then change (as runc and crun do).
    fn set_names(&self, spec: &Spec) -> Result<()> {
        let own_uts = self.plan.has_new(Namespace::Uts)
            || self.plan.joined.iter().any(|(ns, _)| *ns == Namespace::Uts);
        if let Some(name) = spec.hostname().as_deref().filter(|n| !n.is_empty()) {
            if !own_uts {
                bail!("hostname: setting it needs a UTS namespace in linux.namespaces");
            }
            nix::unistd::sethostname(name).context("hostname")?;
        }
        if let Some(name) = spec.domainname().as_deref().filter(|n| !n.is_empty()) {
            if !own_uts {
                bail!("domainname: setting it needs a UTS namespace in linux.namespaces");
            }
            // SAFETY: setdomainname reads `name.len()` bytes from the string's buffer.
            let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
            Errno::result(ret).context("domainname")?;
        }
        Ok(())
    }
}

/// What a config asks that needs a mount namespace of the container's own, as one warning
/// line, or None when it asks nothing of the kind.
fn unapplied_without_mount_namespace(spec: &Spec, may_mknod: bool) -> Option<String> {
    let linux = spec.linux().as_ref();
    let listed = |list: Option<&Vec<String>>| list.is_some_and(|l| !l.is_empty());
    let mut fields = Vec::new();
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        fields.push("mounts");
    }
    if listed(linux.and_then(|l| l.masked_paths().as_ref())) {
        fields.push("linux.maskedPaths");
    }
    if listed(linux.and_then(|l| l.readonly_paths().as_ref())) {
        fields.push("linux.readonlyPaths");
    }
    if !may_mknod && linux.is_some_and(|l| l.devices().as_ref().is_some_and(|d| !d.is_empty())) {
        fields.push("linux.devices");
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        fields.push("root.readonly");
    }
    if linux.is_some_and(|l| l.rootfs_propagation().is_some()) {
        fields.push("linux.rootfsPropagation");
    }
    if fields.is_empty() {
        return None;
    }
    Some(format!(
        "linux.namespaces: no mount namespace: {} not applied (the process only chroots \
         into its root, in the mount namespace of its caller, which it must not change)",
        fields.join(", ")
    ))
}

/// `--no-pivot`: moves the root onto `/` and chroots into it, for roots pivot_root refuses
/// (a ramfs).
fn move_root(rootfs: Rootfs) -> Result<()> {
    rootfs.enter()?;
    nix::mount::mount(
        Some("."),
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_MOVE,
        None::<&str>,
    )
    .context("moving the root onto /")?;
    nix::unistd::chroot(".").context("chroot into the new root")?;
    nix::unistd::chdir("/").context("entering the new root")?;
    Ok(())
}

/// Enters the process's working directory, making it (and its parents) when missing, as runc.
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    if let Err(Errno::ENOENT) = nix::unistd::chdir(cwd) {
        std::fs::create_dir_all(cwd)
            .with_context(|| format!("process.cwd: creating {}", cwd.display()))?;
    }
    nix::unistd::chdir(cwd).with_context(|| format!("process.cwd: {}", cwd.display()))
}

/// Waits on the start socket until `start` connects, and answers it. The connection is
/// close-on-exec: start sees it end when the command runs (or the process ends).
fn wait_for_start(listener: &OwnedFd) -> Result<OwnedFd> {
    let conn = loop {
        match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            other => break other.context("waiting for start")?,
        }
    };
    // SAFETY: accept4 returned this descriptor to us alone.
    let conn = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(conn) };
    nix::unistd::write(&conn, &[1]).context("answering start")?;
    Ok(conn)
}

/// `process.rlimits`: each limit set as given (raising a hard limit needs CAP_SYS_RESOURCE).
pub fn set_rlimits(process: &Process) -> Result<()> {
    for limit in process.rlimits().iter().flatten() {
        let name = limit.typ().to_string();
        let resource = rlimit_resource(&name)
            .ok_or_else(|| anyhow!("process.rlimits: unknown limit {name}"))?;
        let value = libc::rlimit {
            rlim_cur: limit.soft(),
            rlim_max: limit.hard(),
        };
        // SAFETY: setrlimit reads one rlimit from `value`, a live value.
        let ret = unsafe { libc::setrlimit(resource as _, &value) };
        if let Err(e) = Errno::result(ret) {
            let mut current = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes one rlimit into `current`, a live value.
            unsafe { libc::getrlimit(resource as _, &mut current) };
            bail!(
                "process.rlimits: setting {name} to soft {} hard {}: {} (the hard limit is {}; \
                 raising it needs CAP_SYS_RESOURCE)",
                limit.soft(),
                limit.hard(),
                e.desc(),
                current.rlim_max
            );
        }
    }
    Ok(())
}

fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

fn set_personality(personality: &oci_spec::runtime::LinuxPersonality) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain;
    const PER_LINUX: libc::c_ulong = 0;
    const PER_LINUX32: libc::c_ulong = 8;
    let persona = match personality.domain() {
        LinuxPersonalityDomain::PerLinux32 => PER_LINUX32,
        _ => PER_LINUX,
    };
    // SAFETY: personality(2) takes a number and changes only this process's execution domain.
    let ret = unsafe { libc::personality(persona) };
    Errno::result(ret).context("linux.personality")?;
    Ok(())
}
