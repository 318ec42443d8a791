//! The one way the tools fork, exec and wait.
//!
//! Children in new namespaces and the commands the tools exec go through it (spawn, Exec); helper
//! programs run as they are (newuidmap, pasta, hooks) use std::process::Command. It must not decide
//! what a child does, only how it is started, exec'd and waited for.

use crate::errors::{self, exit_error, NOT_EXECUTABLE, NOT_FOUND};
use anyhow::Result;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;

/// PATH when the environment has none, as in the classic tools.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The kernel's struct clone_args, first version (64 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Creates a child in the namespaces named by `flags` (CLONE_NEW* bits, 0 for a plain fork)
/// and runs `child` in it. The child ends with the status `child` returns, or, if it fails,
/// with its error printed as one line and the status the error carries.
///
/// The caller must be single-threaded: the child continues with a copy of the caller's memory,
/// and a user namespace cannot be created by a threaded process anyway.
pub fn spawn(flags: u64, child: impl FnOnce() -> Result<i32>) -> Result<Pid, Errno> {
    spawn_with(flags, true, child)
}

/// [`spawn`] for a child that keeps the caller's signal mask and dispositions, so that no
/// signal can reach it before it blocks or handles what it must (the watchdog).
pub fn spawn_keeping_signals(
    flags: u64,
    child: impl FnOnce() -> Result<i32>,
) -> Result<Pid, Errno> {
    spawn_with(flags, false, child)
}

fn spawn_with(
    flags: u64,
    reset_signals: bool,
    child: impl FnOnce() -> Result<i32>,
) -> Result<Pid, Errno> {
    // A child made a sibling with CLONE_PARENT takes the caller's exit signal: clone3 refuses
    // one of its own then.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 {
        0
    } else {
        libc::SIGCHLD as u64
    };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        ..Default::default()
    };
    // SAFETY: clone3 with no stack behaves as fork: the child gets a copy-on-write copy of this
    // single-threaded process and returns here with 0. No lock can be held by another thread.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 if !reset_signals => finish_child(child),
        0 => {
            // Signals the parent blocked for its signalfd must not stay blocked in the child,
            // and Rust's runtime ignores SIGPIPE, which `cmd | head` relies on not doing. (A
            // child that execs a command gets every signal's default action there.)
            let _ = nix::sys::signal::sigprocmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            // SAFETY: restoring the default action of SIGPIPE installs no handler.
            let _ = unsafe {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGPIPE,
                    nix::sys::signal::SigHandler::SigDfl,
                )
            };
            finish_child(child)
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

/// Gives every signal its default action, for a command about to be executed. An ignored
/// signal stays ignored across exec, and a non-interactive shell cannot trap a signal ignored
/// when it started: a tool started with INT ignored (`cmd &` in a script, `nohup`) would pass
/// INT on to a command that can never act on it. The command starts as from a fresh boot, as
/// systemd and systemd-nspawn start theirs.
fn default_signal_actions() {
    for signal in 1..=libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler; numbers the C library reserves for itself are
        // refused with EINVAL, which changes nothing.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

/// Runs the child's part and ends the child with its status.
fn finish_child(child: impl FnOnce() -> Result<i32>) -> ! {
    let code = match child() {
        Ok(code) => code,
        Err(err) => {
            errors::report(&errors::one_line(&err));
            errors::status_of(&err)
        }
    };
    // SAFETY: _exit ends the child without running the parent's exit handlers or flushing
    // stdio buffers it copied from the parent.
    unsafe { libc::_exit(code) }
}

/// Waits for `pid` and turns its end into a shell-style status: the exit code, or 128+N when
/// it died of signal N.
pub fn wait(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(anyhow::Error::new(e).context(format!("waiting for {pid}"))),
        }
    }
}

/// The shell-style status of a wait result, if the process ended.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Kills `pid` with SIGKILL and reaps it: for children abandoned by a failed start.
pub fn kill_and_reap(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = waitpid(pid, None);
}

/// A command line and environment ready for execve.
#[derive(Clone)]
pub struct Exec {
    argv: Vec<CString>,
    env: Vec<CString>,
}

impl Exec {
    /// `argv[0]` is looked up in PATH from `env` when it holds no slash.
    pub fn new<S: AsRef<std::ffi::OsStr>>(argv: &[S], env: Vec<(String, String)>) -> Result<Exec> {
        let argv = argv
            .iter()
            .map(|a| CString::new(a.as_ref().as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow::anyhow!("command line holds a NUL byte"))?;
        if argv.is_empty() {
            anyhow::bail!("no command given");
        }
        let env = env
            .into_iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow::anyhow!("environment holds a NUL byte"))?;
        Ok(Exec { argv, env })
    }

    /// The command line with the caller's own environment.
    pub fn inheriting<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> Result<Exec> {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Exec::new(argv, env)
    }

    /// Sets variable `name` to `value` unless the environment has it already.
    pub fn set_default_env(&mut self, name: &str, value: &str) {
        let prefix = format!("{name}=");
        if self
            .env
            .iter()
            .any(|e| e.to_bytes().starts_with(prefix.as_bytes()))
        {
            return;
        }
        if let Ok(entry) = CString::new(format!("{name}={value}")) {
            self.env.push(entry);
        }
    }

    fn path(&self) -> String {
        self.env
            .iter()
            .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_else(|| DEFAULT_PATH.to_string())
    }

    /// Finds the file to execute: `argv[0]` itself when it holds a slash, else the first
    /// executable match in PATH, as execvp does. Fails with status 127 when there is none and
    /// 126 when the only matches cannot be executed.
    pub fn resolve(&self) -> Result<CString> {
        use nix::unistd::{access, AccessFlags};
        let name = errors::shown(self.argv[0].to_bytes());
        let candidates: Vec<CString> = if name.contains('/') {
            vec![self.argv[0].clone()]
        } else {
            self.path()
                .split(':')
                .map(|dir| if dir.is_empty() { "." } else { dir })
                .filter_map(|dir| {
                    let mut file = format!("{dir}/").into_bytes();
                    file.extend_from_slice(self.argv[0].to_bytes());
                    CString::new(file).ok()
                })
                .collect()
        };
        let mut refused: Option<Errno> = None;
        for file in candidates {
            // A file we cannot even see (missing, or behind a directory we may not search)
            // hides nothing we could run.
            let Ok(meta) = nix::sys::stat::stat(file.as_c_str()) else {
                continue;
            };
            let is_dir = meta.st_mode & libc::S_IFMT == libc::S_IFDIR;
            match access(file.as_c_str(), AccessFlags::X_OK) {
                Ok(()) if !is_dir => return Ok(file),
                Ok(()) => {
                    refused.get_or_insert(Errno::EISDIR);
                }
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        Err(match refused {
            Some(e) => exit_error(NOT_EXECUTABLE, format!("{name}: {}", e.desc())),
            None if name.contains('/') => {
                exit_error(NOT_FOUND, format!("{name}: No such file or directory"))
            }
            None => exit_error(NOT_FOUND, format!("{name}: command not found")),
        })
    }

    /// Replaces this process with the command, closing every descriptor above stderr first so
    /// the command sees only 0, 1 and 2. Returns only on failure, with status 127 when the
    /// command does not exist and 126 when it cannot be executed.
    pub fn exec(&self) -> anyhow::Error {
        self.exec_preserving(0)
    }

    /// [`Exec::exec`] keeping descriptors 3 to 3+`extra`-1 open too (an OCI runtime's
    /// `--preserve-fds`, systemd's socket activation).
    pub fn exec_preserving(&self, extra: u32) -> anyhow::Error {
        let file = match self.resolve() {
            Ok(file) => file,
            Err(e) => return e,
        };
        // Signals held until now (see supervise::hold_forwarded) must not stay blocked in the
        // command; pending ones are delivered here, to a process that is not PID 1.
        default_signal_actions();
        let _ =
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        close_inherited_fds_from(3 + extra);
        for fd in 3..3 + extra {
            // SAFETY: clearing FD_CLOEXEC on a descriptor number touches no memory.
            unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) };
        }
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let err = execve(&file, &argv, &envp);
        exit_error(
            NOT_EXECUTABLE,
            format!("{}: {}", errors::shown(file.to_bytes()), err.desc()),
        )
    }
}

fn execve(file: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into CStrings that outlive
    // the call; execve only returns on failure.
    unsafe { libc::execve(file.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// A pidfd of process `pid` (pidfd_open(2)): a handle that cannot come to name another process
/// that reuses the PID. The system call itself: neither musl nor older glibc wrap it.
pub fn pidfd_open(pid: i32) -> Result<std::os::fd::OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a PID and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the descriptor was just created and is owned by nothing else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// close_range(2) on descriptors `first` to `last` of this process, with `flags` (0 closes,
/// CLOSE_RANGE_CLOEXEC marks). The system call itself: musl, which `make` builds against, has
/// no wrapper. Async-signal-safe. Fails (non-zero) only on kernels without it or its flag.
pub fn close_range(first: u32, last: u32, flags: u32) -> libc::c_long {
    // SAFETY: close_range only closes or marks descriptors of this process.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) }
}

/// Marks every descriptor above 2 close-on-exec, so an exec leaves only stdin, stdout and
/// stderr, whatever the caller passed in.
pub fn close_inherited_fds() {
    close_inherited_fds_from(3)
}

/// Marks every descriptor from `first` up close-on-exec.
fn close_inherited_fds_from(first: u32) {
    if close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) != 0 {
        // Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: mark them one by one.
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= first as i32)
                .collect();
            for fd in fds {
                // SAFETY: setting FD_CLOEXEC on a descriptor number is harmless even if it has
                // been closed meanwhile (the call then fails with EBADF).
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
}

/// The shell-style status of a std child: the exit code, or 128+N when it died of signal N.
pub fn exit_code_of(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Fills `bytes` from the kernel's random source (getrandom(2)).
pub fn random_bytes(bytes: &mut [u8]) -> Result<(), Errno> {
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: getrandom writes at most rest.len() bytes into the buffer we own.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match Errno::result(n) {
            Ok(n) => filled += n as usize,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
