//! `exec`: another process in a running container. An intermediate child joins the
//! container's namespaces and root (user namespace first), then forks the process itself,
//! which lands in the container's PID namespace; with `--detach` the intermediate child exits
//! at once and the process is left to the engine's subreaper, as after create.

use super::create::{credentials, enter_cwd, environment, set_rlimits};
use super::report::{ReportPipe, Reporter};
use super::state::{self, ContainerDir, Status};
use super::terminal;
use crate::ns::Joiner;
use crate::process::{self, Exec};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Process;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What `exec` is asked.
pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// The process config.json gives, as the base of an exec without `--process`.
pub fn bundle_process(root: &Path, id: &str) -> Result<Process> {
    let dir = ContainerDir::open(root, id)?;
    let saved = dir.load()?;
    let config = saved.bundle.join("config.json");
    let text = std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
    let spec = super::bundle::parse(&text).with_context(|| config.display().to_string())?;
    spec.process()
        .clone()
        .ok_or_else(|| anyhow!("{}: process: missing", config.display()))
}

/// Runs the process in the container: returns 0 once it runs (`--detach`), else its status.
pub fn exec(options: &ExecOptions) -> Result<i32> {
    super::bundle::check_process(&options.process, "process")?;
    let process = &options.process;
    if process.terminal() == Some(true) && options.console_socket.is_none() {
        bail!("process.terminal is true: a terminal needs --console-socket");
    }
    let saved = {
        let dir = ContainerDir::open(&options.root, &options.id)?;
        let saved = dir.load()?;
        match dir.status(&saved) {
            Status::Stopped => bail!("cannot exec in a stopped container"),
            Status::Created | Status::Running => saved,
        }
    };
    let pid = saved.pid;
    // The container's seccomp profile binds every process run in it.
    let config = saved.bundle.join("config.json");
    let text = std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
    let spec = super::bundle::parse(&text).with_context(|| config.display().to_string())?;
    let filter = super::filter::compile(spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()))?;
    let joiner = Joiner::open(pid)?;
    let root = crate::mount::open_dir(Path::new(&format!("/proc/{pid}/root")))?;
    if !state::process_alive(pid, saved.start_time) {
        bail!("container not running");
    }
    let console = match &options.console_socket {
        Some(path) if process.terminal() == Some(true) => Some(terminal::connect(path)?),
        _ => None,
    };
    let exec = Exec::new(
        process.args().as_deref().unwrap_or(&[]),
        environment(process),
    )?;
    let creds = credentials(process)?;
    let labels = super::labels::of(process);
    let report = ReportPipe::new()?;
    let (pid_read, pid_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
    let pid_write = std::os::fd::IntoRawFd::into_raw_fd(pid_write);
    // The intermediate child waits until it is in the container's cgroups, which the process
    // it forks then shares.
    let hold = crate::userns::LifelinePipe::new()?;
    let intermediate = process::spawn(0, || {
        let mut reporter = report.child();
        if !hold.child().released() {
            return Ok(1);
        }
        let entered = (|| -> Result<()> {
            joiner.join()?;
            crate::userns::become_root()?;
            nix::unistd::fchdir(&root).context("entering the container's root")?;
            nix::unistd::chroot(".").context("changing root to the container's root")?;
            Ok(())
        })();
        if let Err(e) = entered {
            reporter.failed(&e);
            return Ok(1);
        }
        let child = process::spawn(0, || {
            let run = Run {
                process,
                exec: &exec,
                creds: &creds,
                filter: filter.as_ref(),
                console: console.as_ref(),
                preserve_fds: options.preserve_fds,
                labels: labels.clone(),
            };
            let err = match run.run(&mut reporter) {
                Ok(never) => return Ok(never),
                Err(e) => e,
            };
            if reporter.failed(&err) {
                return Ok(1);
            }
            crate::errors::report(&crate::errors::one_line(&err));
            Ok(crate::errors::status_of(&err))
        })
        .map_err(|e| anyhow!("starting the process: {}", e.desc()))?;
        // The intermediate's copy of the report's write end: the process holds its own.
        reporter.close();
        nix::unistd::write(
            // SAFETY: the pipe's write end, open in this child until it exits.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(pid_write) },
            &child.as_raw().to_ne_bytes(),
        )?;
        if options.detach {
            return Ok(0);
        }
        process::wait(child)
    })
    .map_err(|e| anyhow!("starting the process: {}", e.desc()))?;
    let hold = hold.parent();
    let joined = super::cgroups::join_existing(intermediate.as_raw(), &saved.cgroups)
        .and_then(|()| Ok(nix::unistd::write(&hold, &[1])?));
    if let Err(e) = joined {
        process::kill_and_reap(intermediate);
        return Err(e);
    }
    drop(hold);
    // SAFETY: the parent's copy of the write end, which nothing else holds: closing it lets
    // the read below end when the intermediate child does.
    unsafe { libc::close(pid_write) };
    drop(console);
    let mut pid_bytes = Vec::new();
    let _ = File::from(pid_read).read_to_end(&mut pid_bytes);
    let exec_pid = <[u8; 4]>::try_from(pid_bytes.as_slice())
        .map(i32::from_ne_bytes)
        .ok();
    if let Err(e) = report.wait("the process ended before it was ready") {
        if let Some(pid) = exec_pid {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        let _ = process::wait(intermediate);
        return Err(e);
    }
    if let (Some(pid_file), Some(pid)) = (&options.pid_file, exec_pid) {
        state::write_atomically(pid_file, pid.to_string().as_bytes())?;
    }
    process::wait(intermediate)
}

/// The process's side, in the container: terminal, working directory, limits, credentials,
/// then exec.
struct Run<'a> {
    process: &'a Process,
    exec: &'a Exec,
    creds: &'a crate::caps::Credentials,
    filter: Option<&'a crate::seccomp::Filter>,
    console: Option<&'a std::os::fd::OwnedFd>,
    preserve_fds: u32,
    labels: super::labels::Labels,
}

impl Run<'_> {
    fn run(&self, report: &mut Reporter<'_>) -> Result<i32> {
        let process = self.process;
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
        if let Some(umask) = process.user().umask() {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
        }
        enter_cwd(process.cwd())?;
        set_rlimits(process)?;
        self.exec.resolve()?;
        self.labels.apply()?;
        super::filter::lock_down(self.creds, self.filter)?;
        report.ready()?;
        Err(self.exec.exec_preserving(self.preserve_fds))
    }
}

/// The process `exec` runs: `--process FILE`'s, else config.json's with the options laid over
/// it.
pub fn process_of(
    root: &Path,
    id: &str,
    file: Option<&Path>,
    overrides: Overrides,
) -> Result<Process> {
    match file {
        Some(file) => read_process(file),
        None => process_from_options(bundle_process(root, id)?, overrides),
    }
}

/// Reads `exec --process FILE`: a config.json `process` object.
pub fn read_process(file: &Path) -> Result<Process> {
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        anyhow!("{}: {path}: {}", file.display(), e.into_inner())
    })
}

/// runc's exec options, laid over the container's own process.
pub struct Overrides {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
}

/// The process `exec` runs without `--process`: config.json's, with the command, and what the
/// options change (the environment is added to, capabilities are added to every set).
pub fn process_from_options(mut process: Process, o: Overrides) -> Result<Process> {
    if o.args.is_empty() {
        bail!("exec: no command given (give one, or --process FILE)");
    }
    process.set_args(Some(o.args));
    process.set_terminal(Some(o.tty));
    if let Some(cwd) = o.cwd {
        process.set_cwd(cwd);
    }
    let mut env = process.env().clone().unwrap_or_default();
    env.extend(o.env);
    process.set_env(Some(env));
    if let Some(spec) = o.user {
        let user = crate::caps::parse_user(&spec)?;
        let user_spec = process.user_mut();
        user_spec.set_uid(user.uid);
        user_spec.set_gid(user.gid);
    }
    if o.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        use std::str::FromStr;
        let mut caps = process.capabilities().clone().unwrap_or_default();
        let mut added = oci_spec::runtime::Capabilities::new();
        for name in &o.caps {
            let bare = name.to_ascii_uppercase();
            let bare = bare.strip_prefix("CAP_").unwrap_or(&bare).to_string();
            let cap = oci_spec::runtime::Capability::from_str(&bare)
                .map_err(|_| anyhow!("--cap: unknown capability '{name}'"))?;
            added.insert(cap);
        }
        let with = |set: &Option<oci_spec::runtime::Capabilities>| {
            let mut set = set.clone().unwrap_or_default();
            set.extend(added.iter().copied());
            Some(set)
        };
        caps.set_bounding(with(caps.bounding()));
        caps.set_effective(with(caps.effective()));
        caps.set_permitted(with(caps.permitted()));
        caps.set_inheritable(with(caps.inheritable()));
        caps.set_ambient(with(caps.ambient()));
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}
