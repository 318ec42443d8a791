//! The shared harness of the integration tests: it runs the built `pseudo`, `contain` and
//! `inject` binaries the way a user would, as an unprivileged user or as root.
//!
//! # Who runs the binaries
//!
//! - When the suite runs as root, [`As::User`] is a dedicated account, [`TEST_USER`], created
//!   on first use (with useradd, and given /etc/subuid and /etc/subgid ranges if it has none).
//!   [`As::Root`] runs the binaries as root, for the run-as-root defaults.
//! - When the suite runs as an ordinary user, [`As::User`] is that user. [`As::Root`] is not
//!   available: start such tests with `if !require(As::Root) { return; }`, which prints
//!   `skipped: ...` and lets the test pass. Tests that need subordinate ranges start with
//!   `let Some((subuid, subgid)) = subordinate_ids(N) else { return };` likewise.
//!
//! # Running
//!
//! The binaries under target/debug are copied once per test process into a world-readable
//! directory (the checkout may sit in a home the test user cannot enter), so build them first:
//! `cargo build --workspace && cargo test --workspace`. To test other binaries (`make check`
//! tests the installed ones), name their directory in `CONTAIN_TESTS_BIN_DIR` ([`BIN_DIR_VAR`]).
//!
//! - [`run`] / [`sh`] run a tool or a shell script to the end and return its [`Output`].
//! - [`command`] / [`sh_command`] give the [`Command`] to adjust first (environment, working
//!   directory, stdin), then [`output`] runs it, or [`spawn`] starts it and returns a [`Running`]
//!   process to signal and later [`Running::finish`].
//! - [`contain`] / [`contain_command`] and [`inject_command`] do the same for
//!   `contain OPTIONS... ROOT CMD...` and `inject OPTIONS... PID CMD...`;
//!   [`BackgroundContainer`] is a container that runs until the test stops it; [`MODES`] are
//!   contain's two console modes, to test something in both.
//! - [`spawn_on_terminal`] / [`on_terminal`] run a shell script on a terminal of its own (a
//!   pty made by util-linux `script`), to type on it and to see what it showed.
//!
//! Every process is started in a process group of its own, with stdin from /dev/null and a
//! minimal environment (`PATH` with the binaries first, `HOME`, `USER`, `LOGNAME`; for
//! [`As::Root`] also `CONTAIN_REGISTRY`, see [`root_registry`]), in `/`.
//! Each gets [`TIMEOUT`]: a process still running then has its process group killed, and the
//! test fails. A [`Running`] dropped before it finished has its process group killed too.
//!
//! # Files
//!
//! [`TempDir`] is a fresh directory under /tmp, owned by the test user and removed on drop
//! (entries owned by subordinate IDs included). [`busybox_rootfs`] is a small static root file
//! system for containers, owned by the test user; [`busybox_rootfs_of`] gives it to container
//! root of root's default maps for [`As::Root`] (whose containers have no host account's IDs:
//! [`container_root_on_host`] tells which, [`give_tree`] hands a tree over). [`TestCgroup`] is
//! a cgroup v2 subtree made by root for a test, as systemd delegates one, to start a process
//! in. [`tree_snapshot`] records a tree, to see later that nothing changed it. [`owner`] reads
//! the host owner of a file. [`ProcStatus`] reads a /proc/PID/status (capabilities,
//! NoNewPrivs, IDs), and [`ps_rows`] the table `ps` prints.
//!
//! # Example
//!
//! ```no_run
//! use tests::*;
//!
//! let dir = TempDir::new();
//! let out = run(As::User, "pseudo", ["touch", &dir.arg("f")]);
//! expect_success(&out);
//! assert_eq!(owner(&dir.join("f")), (user().uid, user().gid));
//! ```

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The account the binaries run as when the suite runs as root.
pub const TEST_USER: &str = "contain-test";

/// How long any one process may run before the harness kills it and fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The tools the harness can run.
pub const TOOLS: [&str; 4] = ["pseudo", "contain", "inject", "contain-oci"];

/// The PATH every process gets after the directory of the copied binaries.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Prefix of everything the harness creates under /tmp.
const TMP_PREFIX: &str = "contain-tests";

/// Who a process runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As {
    /// The unprivileged test user: [`TEST_USER`] under root, else the user running the suite.
    User,
    /// Real root. Only when the suite runs as root: check with [`require`] first.
    Root,
}

/// A range of subordinate IDs granted in /etc/subuid or /etc/subgid: `count` IDs from `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubRange {
    pub first: u32,
    pub count: u32,
}

/// The unprivileged user of [`As::User`].
#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// The user's first range in /etc/subuid, if any.
    pub subuid: Option<SubRange>,
    /// The user's first range in /etc/subgid, if any.
    pub subgid: Option<SubRange>,
}

impl TestUser {
    /// The host uid that container uid `id` has under the default unprivileged map: 0 is the
    /// user, `n` is the n-th subordinate uid (`subuid.first + n - 1`). None past the first
    /// subordinate range.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        stacked(self.uid, self.subuid, id)
    }

    /// The host gid that container gid `id` has under the default unprivileged map.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        stacked(self.gid, self.subgid, id)
    }
}

fn stacked(own: u32, sub: Option<SubRange>, id: u32) -> Option<u32> {
    match (id, sub) {
        (0, _) => Some(own),
        (n, Some(r)) if n - 1 < r.count => Some(r.first + (n - 1)),
        _ => None,
    }
}

/// True when the test process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The user that [`As::User`] runs as (created on first use when the suite runs as root).
pub fn user() -> &'static TestUser {
    static USER: OnceLock<TestUser> = OnceLock::new();
    USER.get_or_init(|| {
        if is_root() {
            ensure_test_user()
        } else {
            current_user()
        }
    })
}

/// True if processes can run as `who`; otherwise prints `skipped: <test>: needs root` and
/// returns false, so that the test can return early: `if !require(As::Root) { return; }`.
pub fn require(who: As) -> bool {
    if who == As::Root && !is_root() {
        skip("needs root");
        return false;
    }
    true
}

/// The test user's first subordinate uid and gid ranges, when both exist and hold at least
/// `needed` IDs; otherwise prints `skipped: <test>: ...` and returns None.
pub fn subordinate_ids(needed: u32) -> Option<(SubRange, SubRange)> {
    let u = user();
    match (u.subuid, u.subgid) {
        (Some(uids), Some(gids)) if uids.count >= needed && gids.count >= needed => {
            Some((uids, gids))
        }
        _ => {
            skip(&format!(
                "needs ranges of at least {needed} IDs for {} in /etc/subuid and /etc/subgid \
                 (has {:?} and {:?})",
                u.name, u.subuid, u.subgid
            ));
            None
        }
    }
}

/// Prints `skipped: <test name>: <reason>` straight to stderr, so that it shows even when the
/// test harness captures output.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("test");
    let _ = writeln!(std::io::stderr(), "skipped: {test}: {reason}");
}

fn current_user() -> TestUser {
    let uid = nix::unistd::getuid();
    let entry = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("uid {uid} has no passwd entry"));
    let (subuid, subgid) = subordinate_ranges(&entry.name, uid.as_raw());
    TestUser {
        name: entry.name,
        uid: uid.as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        home: entry.dir,
        subuid,
        subgid,
    }
}

/// Creates [`TEST_USER`] and its subordinate ranges unless they exist. Test binaries run at
/// the same time: an flock makes the check-and-create one step.
fn ensure_test_user() -> TestUser {
    let _lock = lock_file(Path::new(&format!("/tmp/{TMP_PREFIX}-user.lock")));

    if lookup_user(TEST_USER).is_none() {
        run_admin(Command::new("useradd").args([
            "--user-group",
            "--create-home",
            "--shell",
            "/bin/sh",
            "--comment",
            "integration tests of pseudo, contain and inject",
            TEST_USER,
        ]));
    }
    let entry = lookup_user(TEST_USER).expect("useradd succeeded but the user does not exist");
    let (subuid, subgid) = subordinate_ranges(TEST_USER, entry.uid.as_raw());
    if subuid.is_none() || subgid.is_none() {
        let first = first_free_subordinate_id();
        let span = format!("{first}-{}", first + 65535);
        let mut usermod = Command::new("usermod");
        if subuid.is_none() {
            usermod.args(["--add-subuids", &span]);
        }
        if subgid.is_none() {
            usermod.args(["--add-subgids", &span]);
        }
        run_admin(usermod.arg(TEST_USER));
    }
    let (subuid, subgid) = subordinate_ranges(TEST_USER, entry.uid.as_raw());
    TestUser {
        name: TEST_USER.to_string(),
        uid: entry.uid.as_raw(),
        gid: entry.gid.as_raw(),
        home: entry.dir,
        subuid,
        subgid,
    }
}

/// An exclusive flock on the file `path` (created with mode 0600 if missing, never through a
/// symlink), held until the returned value is dropped: for steps that test processes running
/// at the same time must take in turns.
#[track_caller]
pub fn lock_file(path: &Path) -> Flock<fs::File> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    Flock::lock(file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("locking {}: {e}", path.display()))
}

fn lookup_user(name: &str) -> Option<nix::unistd::User> {
    nix::unistd::User::from_name(name).ok().flatten()
}

fn run_admin(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));
}

/// The first ID above every range granted in /etc/subuid and /etc/subgid, on a 65536 boundary.
fn first_free_subordinate_id() -> u32 {
    let mut end: u64 = 100_000;
    for file in ["/etc/subuid", "/etc/subgid"] {
        for (_, first, count) in subid_lines(file) {
            end = end.max(first as u64 + count as u64);
        }
    }
    let first = end.div_ceil(65536) * 65536;
    assert!(
        first + 65536 <= u32::MAX as u64,
        "no room left for subordinate IDs"
    );
    first as u32
}

/// `(name or uid, first, count)` of every well-formed line of a subordinate ID file.
fn subid_lines(file: &str) -> Vec<(String, u32, u32)> {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let who = fields.next()?.to_string();
            let first = fields.next()?.parse().ok()?;
            let count = fields.next()?.parse().ok()?;
            Some((who, first, count))
        })
        .collect()
}

/// The first subuid and subgid ranges of the user, matched by name or uid as shadow does.
fn subordinate_ranges(name: &str, uid: u32) -> (Option<SubRange>, Option<SubRange>) {
    let first_of = |file| {
        subid_lines(file)
            .into_iter()
            .find(|(who, _, count)| (who == name || *who == uid.to_string()) && *count > 0)
            .map(|(_, first, count)| SubRange { first, count })
    };
    (first_of("/etc/subuid"), first_of("/etc/subgid"))
}

/// The path of the copied binary of `tool` ("pseudo", "contain", "inject" or "contain-oci").
pub fn bin(tool: &str) -> PathBuf {
    assert!(TOOLS.contains(&tool), "unknown tool {tool:?}");
    let path = bin_dir().join(tool);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (or name the directory \
         of the binaries to test in {BIN_DIR_VAR})",
        build_dir().join(tool).display()
    );
    path
}

/// The environment variable naming the directory of the binaries to test instead of the
/// build's (`make check` sets it to the staged `make install`).
pub const BIN_DIR_VAR: &str = "CONTAIN_TESTS_BIN_DIR";

/// Where the binaries under test are: `$CONTAIN_TESTS_BIN_DIR` if set, else target/debug (or
/// target/release): the test binary is target/debug/deps/<test>-<hash>.
fn build_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_VAR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("locating the test binary");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test binary is not in target/<profile>/deps")
        .to_path_buf()
}

/// A world-readable directory holding copies of the built binaries, made once per process.
/// Copies left by earlier test processes that have ended are removed on the way.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale_dirs("bin");
        let dir = unique_dir(&format!("{TMP_PREFIX}-bin.{}", std::process::id()));
        let built = build_dir();
        for tool in TOOLS {
            let from = built.join(tool);
            if from.exists() {
                let to = dir.join(tool);
                copy_executable(&from, &to);
                fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        dir
    })
}

/// Copies the file `from` to the new file `to`, to be executed later, by a `cp` of its own.
///
/// Never with fs::copy or fs::write in the test process: tests run in threads, and a thread
/// that forks (any Command) while another holds the new file open for writing gives its child
/// that descriptor until the child's exec closes it. An exec of the file meanwhile fails with
/// "Text file busy" (ETXTBSY), whatever name the file was written under: the kernel counts
/// writers per inode. A `cp` is a process of its own that forks nothing: its descriptor is
/// closed, everywhere, when it has exited.
#[track_caller]
pub fn copy_executable(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running cp: {e}"));
    assert!(
        out.status.success(),
        "copying {} to {}: {}",
        from.display(),
        to.display(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    );
}

/// The environment variable that names the registry of names of the containers contain runs
/// (common::registry::REGISTRY_VAR).
pub const REGISTRY_VAR: &str = "CONTAIN_REGISTRY";

/// The registry of names of the containers root starts, for [`As::Root`]'s commands: a
/// directory made once per process under /tmp, where root's default, /run/contain, would be
/// a change of the host. Made by contain, mode 0700, in a directory of its own; those left
/// by earlier test processes that have ended are removed on the way.
pub fn root_registry() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_stale_dirs("registry");
        unique_dir(&format!("{TMP_PREFIX}-registry.{}", std::process::id())).join("contain")
    })
}

/// Removes the directories `/tmp/{TMP_PREFIX}-KIND.PID.N` of ours whose test process PID has
/// ended.
fn remove_stale_dirs(kind: &str) {
    let prefix = format!("{TMP_PREFIX}-{kind}.");
    let me = nix::unistd::geteuid().as_raw();
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid: Option<u32> = rest.split('.').next().and_then(|p| p.parse().ok());
        let ours = entry.metadata().is_ok_and(|m| m.uid() == me);
        if ours && pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Creates `/tmp/<stem>.<n>` (mode 0755) for the first `n` that does not exist yet.
fn unique_dir(stem: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let path = PathBuf::from(format!(
            "/tmp/{stem}.{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::create_dir(&path) {
            Ok(()) => {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
                return path;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("creating {}: {e}", path.display()),
        }
    }
}

/// A string of digits unique within the test process, to mark a process or file of one test
/// (e.g. `sleep 1000<token>`) so that it can be told from those of tests running beside it.
pub fn unique_token() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A command running `tool` with `args` as `who`, set up as described in the crate docs:
/// minimal environment, cwd `/`, stdin from /dev/null, a process group of its own.
pub fn command<I, S>(who: As, tool: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(bin(tool));
    cmd.args(args);
    prepare(&mut cmd, who);
    cmd
}

/// A command running `sh -c script` as `who`, set up like [`command`]. The tools are first in
/// PATH, so the script can say `echo hi | pseudo cat`.
pub fn sh_command(who: As, script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script);
    prepare(&mut cmd, who);
    cmd
}

fn prepare(cmd: &mut Command, who: As) {
    assert!(
        who == As::User || is_root(),
        "As::Root needs root: start the test with `if !require(As::Root) {{ return; }}`"
    );
    let (name, home) = match who {
        As::User => (user().name.clone(), user().home.clone()),
        As::Root => ("root".to_string(), PathBuf::from("/root")),
    };
    cmd.env_clear()
        .env("PATH", format!("{}:{SYSTEM_PATH}", bin_dir().display()))
        .env("HOME", home)
        .env("USER", &name)
        .env("LOGNAME", &name)
        .current_dir("/")
        .stdin(Stdio::null())
        .process_group(0);
    match who {
        // std drops the supplementary groups too when root sets a uid.
        As::User if is_root() => {
            cmd.uid(user().uid).gid(user().gid);
        }
        As::Root => {
            cmd.env(REGISTRY_VAR, root_registry());
        }
        As::User => {}
    }
}

/// Runs `tool args` as `who` to the end (within [`TIMEOUT`]).
pub fn run<I, S>(who: As, tool: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    output(command(who, tool, args))
}

/// Runs `sh -c script` as `who` to the end (within [`TIMEOUT`]).
pub fn sh(who: As, script: &str) -> Output {
    output(sh_command(who, script))
}

/// Runs a prepared command to the end (within [`TIMEOUT`]) and collects its output.
pub fn output(cmd: Command) -> Output {
    spawn(cmd).finish()
}

/// contain's two console modes, as options: console emulation (the default) and `-c` (init gets
/// contain's stdin, stdout and stderr). What does not depend on the mode is tested in both.
pub const MODES: [&[&str]; 2] = [&[], &["-c"]];

/// The name of the console mode `options` choose (see [`MODES`]), for failure messages.
pub fn mode(options: &[&str]) -> &'static str {
    if options.contains(&"-c") {
        "-c"
    } else {
        "console"
    }
}

/// `contain OPTIONS... ROOT CMD...` as `who`, set up like [`command`].
pub fn contain_command(who: As, options: &[&str], root: &TempDir, cmd: &[&str]) -> Command {
    command(who, "contain", around(options, root.path_arg(), cmd))
}

/// `contain OPTIONS... ROOT CMD...` run to the end as `who` (within [`TIMEOUT`]).
pub fn contain(who: As, options: &[&str], root: &TempDir, cmd: &[&str]) -> Output {
    output(contain_command(who, options, root, cmd))
}

/// `inject OPTIONS... PID CMD...` as `who`, set up like [`command`].
pub fn inject_command(who: As, options: &[&str], pid: u32, cmd: &[&str]) -> Command {
    command(who, "inject", around(options, pid.to_string(), cmd))
}

/// The arguments `options... operand cmd...`.
fn around(options: &[&str], operand: String, cmd: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = options.iter().map(|s| s.to_string()).collect();
    args.push(operand);
    args.extend(cmd.iter().map(|s| s.to_string()));
    args
}

/// A process started by [`spawn`]. Its stdout and stderr are collected until it ends.
pub struct Running {
    pid: u32,
    what: String,
    /// The process's stdin, when the command was given `Stdio::piped()`: write to it, then drop
    /// it (or let [`Running::finish`] close it).
    pub stdin: Option<ChildStdin>,
    ended: Option<Receiver<std::io::Result<Output>>>,
}

/// Starts a prepared command (stdout and stderr are captured) without waiting for it.
pub fn spawn(mut cmd: Command) -> Running {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let what = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let pid = child.id();
    let stdin = child.stdin.take();
    let (tx, ended) = mpsc::channel();
    // wait_with_output reads both pipes to their end, then reaps: on a thread of its own, so
    // that the test can give up on it.
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    Running {
        pid,
        what,
        stdin,
        ended: Some(ended),
    }
}

impl Running {
    /// The process's PID (also its process group ID).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` to the process (not to its group).
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid as i32), signal)
            .unwrap_or_else(|e| panic!("sending {signal} to {}: {e}", self.pid));
    }

    /// Closes stdin, waits for the end within [`TIMEOUT`] and returns the output. A process
    /// still running by then, or still holding its stdout or stderr open through a process it
    /// left behind, has its process group killed, and the test fails.
    #[track_caller]
    pub fn finish(self) -> Output {
        self.finish_within(TIMEOUT)
    }

    /// [`Running::finish`] with a shorter limit, for processes expected to end soon after an
    /// event (the test still fails if they do not).
    #[track_caller]
    pub fn finish_within(mut self, limit: Duration) -> Output {
        drop(self.stdin.take());
        let ended = self.ended.take().expect("finished twice");
        match ended.recv_timeout(limit) {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => panic!("collecting the output of {}: {e}", self.what),
            Err(_) => {
                kill_group(self.pid);
                let partial = match ended.recv_timeout(Duration::from_secs(10)) {
                    Ok(Ok(out)) => describe(&out),
                    _ => "(its output pipes are still open: a process escaped its group)".into(),
                };
                panic!(
                    "{} did not end within {limit:?}; killed its process group {}: {partial}",
                    self.what, self.pid
                )
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(ended) = self.ended.take() {
            if ended.try_recv().is_err() {
                kill_group(self.pid);
                let _ = ended.recv_timeout(Duration::from_secs(10));
            }
        }
    }
}

/// Starts the shell command line `script` as `who` on a terminal of its own: util-linux
/// `script` runs it with a new pty as its controlling terminal, stdin, stdout and stderr, and
/// relays that pty, so what the test writes to the returned keyboard is typed on the terminal
/// and the output is what the terminal showed (lines end in `\r\n`). `script` turns the end of
/// its input into a byte for the terminal: drop the keyboard only after the process has ended
/// ([`Running::finish`]), as on a real terminal.
pub fn spawn_on_terminal(who: As, script: &str) -> (Running, ChildStdin) {
    let mut cmd = sh_command(
        who,
        &format!("exec script -qfec {} /dev/null", shell_quote(script)),
    );
    cmd.stdin(Stdio::piped());
    let mut running = spawn(cmd);
    let keyboard = running.stdin.take().expect("stdin is piped");
    (running, keyboard)
}

/// Runs `script` on a terminal of its own (see [`spawn_on_terminal`]) to the end, typing
/// nothing, and returns what the terminal showed.
pub fn on_terminal(who: As, script: &str) -> Output {
    let (running, keyboard) = spawn_on_terminal(who, script);
    let out = running.finish();
    drop(keyboard);
    out
}

/// `contain ROOT sh -c INSIDE` run as `who` on a terminal of its own (see [`on_terminal`]) set
/// to `rows` x `cols`; after contain's output the terminal shows `status=N` (contain's status)
/// and, if contain left the terminal's settings as they were, `terminal restored`.
pub fn contain_on_terminal_of_size(
    who: As,
    rows: u16,
    cols: u16,
    root: &TempDir,
    inside: &str,
) -> Output {
    let script = format!(
        "stty rows {rows} cols {cols}; before=$(stty -g)\n\
         contain {} sh -c {}\n\
         echo status=$?\n\
         [ \"$before\" = \"$(stty -g)\" ] && echo terminal restored\n",
        root.path_arg(),
        shell_quote(inside)
    );
    on_terminal(who, &script)
}

/// `word` quoted for sh: in single quotes, each single quote in it written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// SIGKILL to the process group `pid` leads and to `pid` itself (in case it left the group).
fn kill_group(pid: u32) {
    let pid = Pid::from_raw(pid as i32);
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = kill(pid, Signal::SIGKILL);
}

/// The exit code of a finished process; fails the test if it was killed by a signal instead.
#[track_caller]
pub fn code(out: &Output) -> i32 {
    match out.status.code() {
        Some(code) => code,
        None => panic!(
            "killed by signal {:?}: {}",
            out.status.signal(),
            describe(out)
        ),
    }
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status, stdout and stderr in one line, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}; stdout {:?}; stderr {:?}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// Asserts exit status 0 and returns stdout.
#[track_caller]
pub fn expect_success(out: &Output) -> String {
    assert!(out.status.success(), "expected success: {}", describe(out));
    stdout(out)
}

/// Asserts the tools' error contract: exit code `code`, and stderr exactly one line that starts
/// with `tool: `. Returns that line (without the newline) for checks of what it names.
#[track_caller]
pub fn expect_error(out: &Output, tool: &str, expected_code: i32) -> String {
    assert_eq!(code(out), expected_code, "{}", describe(out));
    let text = stderr(out);
    let line = text
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("stderr is not one whole line: {text:?}"));
    assert!(
        !line.contains('\n'),
        "stderr is more than one line: {text:?}"
    );
    assert!(
        line.starts_with(&format!("{tool}: ")),
        "stderr does not start with '{tool}: ': {text:?}"
    );
    line.to_string()
}

/// Polls `condition` every 10 ms until it holds; fails the test after [`TIMEOUT`].
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(what, || condition().then_some(()))
}

/// Polls `find` every 10 ms until it finds something, and returns that; fails the test after
/// [`TIMEOUT`].
#[track_caller]
pub fn wait_for<T>(what: &str, mut find: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(found) = find() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The host owner `(uid, gid)` of a path (not following a final symlink).
#[track_caller]
pub fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("reading the owner of {}: {e}", path.display()));
    (meta.uid(), meta.gid())
}

/// The host uid and gid of container root under the default maps of `who`: the user itself,
/// or, for root, the first IDs of root's default maps, read from the uid_map and gid_map that
/// root's `pseudo` shows (none of them a host account's).
pub fn container_root_on_host(who: As) -> (u32, u32) {
    static ROOT: OnceLock<(u32, u32)> = OnceLock::new();
    match who {
        As::User => (user().uid, user().gid),
        As::Root => *ROOT.get_or_init(|| {
            let out = run(
                As::Root,
                "pseudo",
                ["cat", "/proc/self/uid_map", "/proc/self/gid_map"],
            );
            let text = expect_success(&out);
            let roots: Vec<u32> = text
                .lines()
                .filter_map(|line| {
                    let fields: Vec<u32> = line
                        .split_whitespace()
                        .filter_map(|f| f.parse().ok())
                        .collect();
                    match fields[..] {
                        [0, outside, _] => Some(outside),
                        _ => None,
                    }
                })
                .collect();
            assert_eq!(roots.len(), 2, "root's default maps: {text}");
            (roots[0], roots[1])
        }),
    }
}

/// Gives `path` and everything below it (symbolic links themselves, not their targets) to
/// `owner`, as `chown -hR` would: for a tree that root's container root is to write in.
pub fn give_tree(path: &Path, (uid, gid): (u32, u32)) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(path).unwrap().flatten() {
            give_tree(&entry.path(), (uid, gid));
        }
    }
}

/// [`busybox_rootfs`] owned by container root of `who`'s default maps: for root, a tree its
/// containers may write in, as one bootstrapped by root's `pseudo` is.
pub fn busybox_rootfs_of(who: As) -> TempDir {
    let rootfs = busybox_rootfs();
    if who == As::Root {
        give_tree(rootfs.path(), container_root_on_host(As::Root));
    }
    rootfs
}

/// A process as /proc shows it.
#[derive(Clone, Debug)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// Real uid on the host.
    pub uid: u32,
    /// The state letter of /proc/PID/stat: R, S, D, Z, T, ...
    pub state: char,
    pub cmdline: Vec<String>,
}

/// Reads /proc/PID; None once the process is gone.
pub fn process(pid: u32) -> Option<Process> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let mut after_name = stat.get(stat.rfind(')')? + 2..)?.split(' ');
    let state = after_name.next()?.chars().next()?;
    let ppid = after_name.next()?.parse().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cmdline = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Process {
        pid,
        ppid,
        uid,
        state,
        cmdline,
    })
}

/// True while `pid` exists and has not ended: a zombie (ended, not yet reaped) counts as gone.
pub fn process_alive(pid: u32) -> bool {
    process(pid).is_some_and(|p| !matches!(p.state, 'Z' | 'X'))
}

/// The command name the kernel shows in /proc/PID/comm (what pgrep matches); empty when the
/// process is gone.
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// Every process on the host that /proc lists, zombies included.
fn all_processes() -> impl Iterator<Item = Process> {
    fs::read_dir("/proc")
        .expect("reading /proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process)
}

/// Every live process (zombies excluded) on the host, except the test process itself.
pub fn live_processes() -> Vec<Process> {
    let me = std::process::id();
    all_processes()
        .filter(|p| p.pid != me && !matches!(p.state, 'Z' | 'X'))
        .collect()
}

/// Every process whose parent is `parent`, zombies included.
pub fn children_of(parent: u32) -> Vec<Process> {
    all_processes().filter(|p| p.ppid == parent).collect()
}

/// Every live process whose real uid is the test user's or one of its subordinate uids.
///
/// Under root the test user runs nothing but tests, but tests run in parallel: pick out your
/// own processes by a marker, e.g. an argument made with [`unique_token`] (see
/// [`processes_marked`]), or use [`processes_running`]. As an ordinary user the list also
/// holds the user's other processes (shell, cargo).
pub fn test_user_processes() -> Vec<Process> {
    let u = user();
    let own = |uid: u32| {
        uid == u.uid
            || u.subuid
                .is_some_and(|r| uid >= r.first && uid - r.first < r.count)
    };
    live_processes()
        .into_iter()
        .filter(|p| own(p.uid))
        .collect()
}

/// The test user's live processes whose command line mentions `token` (see [`unique_token`]).
pub fn processes_marked(token: &str) -> Vec<Process> {
    test_user_processes()
        .into_iter()
        .filter(|p| p.cmdline.iter().any(|a| a.contains(token)))
        .collect()
}

/// Waits for a live process of any user whose command line is exactly `cmdline` and returns
/// its PID (the first one /proc lists).
#[track_caller]
pub fn wait_for_process(what: &str, cmdline: &[&str]) -> u32 {
    wait_for(what, || processes_running(cmdline).first().map(|p| p.pid))
}

/// Live processes of any user whose command line is exactly `cmdline`, e.g.
/// `["sleep", &seconds]` with a [`unique_token`] in `seconds`: for "nothing left running"
/// checks, which must also see what runs as root or as a subordinate ID.
pub fn processes_running(cmdline: &[&str]) -> Vec<Process> {
    live_processes()
        .into_iter()
        .filter(|p| p.cmdline == cmdline)
        .collect()
}

/// Waits until a `sleep SECONDS` that `pseudo` (started with [`spawn`]) runs has started,
/// sends pseudo SIGTERM, and asserts that pseudo exits with 128 + SIGTERM and that the sleep
/// has ended with it. `seconds` marks the sleep: a [`unique_token`] in it.
#[track_caller]
pub fn expect_sigterm_ends_pseudo(pseudo: Running, seconds: &str) {
    let sleeping = || !processes_running(&["sleep", seconds]).is_empty();
    wait_until("sleep to run", sleeping);
    pseudo.signal(Signal::SIGTERM);
    let out = pseudo.finish();
    assert_eq!(code(&out), 143, "{}", describe(&out));
    assert!(!sleeping(), "sleep {seconds} still runs after pseudo ended");
}

/// The rows of a `ps` table in `lines`: a header line starting with PID, then one line per
/// process up to the first line that is not one, as (PID, command) pairs. The command is the
/// last of `columns` columns, its words joined by single spaces. None without the header.
pub fn ps_rows<'a>(
    mut lines: impl Iterator<Item = &'a str>,
    columns: usize,
) -> Option<Vec<(u32, String)>> {
    if !lines.next()?.trim_start().starts_with("PID ") {
        return None;
    }
    let rows = lines
        .map_while(|line| {
            let mut fields = line.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            let command: Vec<&str> = fields.skip(columns - 2).collect();
            Some((pid, command.join(" ")))
        })
        .collect();
    Some(rows)
}

/// The lines "Key:\tvalue" of a /proc/PID/status, as printed by cat (through a console the
/// lines end in "\r\n").
#[derive(Debug)]
pub struct ProcStatus(HashMap<String, String>);

impl ProcStatus {
    /// The status of process `pid` as /proc shows it now.
    #[track_caller]
    pub fn of(pid: u32) -> ProcStatus {
        ProcStatus::parse(&read(format!("/proc/{pid}/status").as_ref()))
    }

    /// The status in `text`, e.g. what `cat /proc/self/status` printed; lines without a colon
    /// are passed over.
    pub fn parse(text: &str) -> ProcStatus {
        ProcStatus(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    /// The value of `key`, trimmed; fails the test if there is none.
    #[track_caller]
    pub fn field(&self, key: &str) -> &str {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in status {self:?}"))
    }

    /// The hexadecimal mask of `key` (CapBnd, CapEff, ...).
    #[track_caller]
    pub fn mask(&self, key: &str) -> u64 {
        let text = self.field(key);
        u64::from_str_radix(text, 16).unwrap_or_else(|e| panic!("{key} {text:?}: {e}"))
    }

    /// CapBnd, CapPrm, CapEff, CapAmb and NoNewPrivs, in this order.
    pub fn lockdown(&self) -> [u64; 5] {
        [
            self.mask("CapBnd"),
            self.mask("CapPrm"),
            self.mask("CapEff"),
            self.mask("CapAmb"),
            self.field("NoNewPrivs")
                .parse()
                .expect("NoNewPrivs is a number"),
        ]
    }

    /// The real, effective, saved and filesystem IDs of a Uid: or Gid: line.
    pub fn ids(&self, key: &str) -> Vec<u32> {
        self.field(key)
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }

    /// Asserts that all four uids and all four gids are `id`.
    #[track_caller]
    pub fn expect_ids(&self, id: u32) {
        assert_eq!(self.ids("Uid"), [id; 4], "Uid");
        assert_eq!(self.ids("Gid"), [id; 4], "Gid");
    }
}

/// A fresh directory `/tmp/contain-tests.N` (mode 0755, owned by the test user) that is removed
/// with everything in it when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let path = unique_dir(&format!("{TMP_PREFIX}.{}", std::process::id()));
        give_to_test_user(&path);
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `relative` inside the directory.
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.path.join(relative)
    }

    /// [`TempDir::join`] as a String, for command lines.
    pub fn arg(&self, relative: impl AsRef<Path>) -> String {
        path_arg(&self.join(relative))
    }

    /// The directory's own path as a String, for command lines.
    pub fn path_arg(&self) -> String {
        path_arg(&self.path)
    }

    /// Writes a file (mode 0644) owned by the test user and returns its path.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(relative);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        give_to_test_user(&path);
        path
    }

    /// Writes a program or script (mode 0755) owned by the test user and returns its path. It
    /// is written under another name first and copied (see [`copy_executable`]), so that it
    /// can be run at once while other tests start processes.
    pub fn write_executable(
        &self,
        relative: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
    ) -> PathBuf {
        let path = self.join(relative);
        let draft = unique_dir(&format!("{TMP_PREFIX}-draft")).join("file");
        fs::write(&draft, contents).unwrap_or_else(|e| panic!("writing {}: {e}", draft.display()));
        copy_executable(&draft, &path);
        fs::remove_dir_all(draft.parent().unwrap()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        give_to_test_user(&path);
        path
    }

    /// Creates a directory (and its parents, mode 0755) owned by the test user.
    pub fn mkdir(&self, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.join(relative);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        for created in path.ancestors().take_while(|p| *p != self.path) {
            give_to_test_user(created);
        }
        path
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.path).is_ok() || !self.path.exists() {
            return;
        }
        // Entries owned by subordinate IDs: container root of the user's own namespace may
        // remove them. (Root removed everything above already.)
        let removed = Command::new(bin_dir().join("pseudo"))
            .args(["rm", "-rf", "--"])
            .arg(&self.path)
            .stdin(Stdio::null())
            .output();
        if self.path.exists() {
            let _ = writeln!(
                std::io::stderr(),
                "warning: could not remove {}: {removed:?}",
                self.path.display()
            );
        }
    }
}

fn path_arg(path: &Path) -> String {
    path.to_str()
        .expect("temporary paths are UTF-8")
        .to_string()
}

/// Under root, hands `path` to the test user; otherwise it is the test user's already.
fn give_to_test_user(path: &Path) {
    if is_root() {
        let u = user();
        std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// `chown -R` to the test user (symlinks themselves, not their targets).
fn chown_tree(path: &Path) {
    give_to_test_user(path);
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(path).unwrap().flatten() {
            chown_tree(&entry.path());
        }
    }
}

/// A root file system for containers, owned by the test user: a static busybox (from Debian's
/// busybox-static) with a symlink per applet in bin/, empty sbin, proc, sys, dev, root (0700)
/// and tmp (1777), and etc/passwd and etc/group naming root (0) and user (1000).
pub fn busybox_rootfs() -> TempDir {
    let busybox = Path::new("/bin/busybox");
    let rootfs = TempDir::new();
    for dir in ["bin", "sbin", "etc", "proc", "sys", "dev", "root", "tmp"] {
        fs::create_dir(rootfs.join(dir)).unwrap();
    }
    fs::set_permissions(rootfs.join("root"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(
        busybox.exists(),
        "{} is missing: install busybox-static",
        busybox.display()
    );
    // A copy, never a link: the chown below must not reach the host's busybox.
    copy_executable(busybox, &rootfs.join("bin/busybox"));
    for applet in busybox_applets() {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
    )
    .unwrap();
    fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    chown_tree(rootfs.path());
    rootfs
}

/// contain's options for init as uid 1000 holding net_bind_service alone (its `--user` example).
pub const USER_1000_WITH_NET_BIND_SERVICE: [&str; 6] = [
    "--user",
    "1000",
    "--cap-drop",
    "all",
    "--cap-add",
    "net_bind_service",
];

/// A container booted in the background with `contain -c`, to inject into or look at from
/// the host. Its init is a shell that ends with status 0 on SIGTERM; it runs the `setup` it
/// was booted with, starts a `sleep 1<token>`, creates /tmp/ready and waits.
pub struct BackgroundContainer {
    contain: Running,
    /// The container's root directory.
    pub root: TempDir,
    /// The [`unique_token`] in init's `sleep 1<token>`.
    pub token: String,
}

impl BackgroundContainer {
    /// Boots a container in `root` as `who` with contain's `options` besides `-c`, and waits
    /// until init has run `setup` (shell commands, each ended by `;`) and is ready.
    pub fn boot(who: As, root: TempDir, options: &[&str], setup: &str) -> BackgroundContainer {
        let token = unique_token();
        let script = format!("trap 'exit 0' TERM; {setup}sleep 1{token} & touch /tmp/ready; wait");
        let options = [&["-c"], options].concat();
        let cmd = contain_command(who, &options, &root, &["/bin/sh", "-c", &script]);
        let contain = spawn(cmd);
        let ready = root.join("tmp/ready");
        wait_until("the container to be ready", || ready.exists());
        BackgroundContainer {
            contain,
            root,
            token,
        }
    }

    /// The PID of the contain supervisor, as `pgrep -n contain` finds it.
    pub fn supervisor(&self) -> u32 {
        self.contain.pid()
    }

    /// The host PID of the container's init.
    #[track_caller]
    pub fn init(&self) -> u32 {
        // With --net pasta, pasta is contain's other child; its watchdog always is one.
        let watchdog = [format!("contain: watchdog of PID {}", self.supervisor())];
        let children: Vec<Process> = children_of(self.supervisor())
            .into_iter()
            .filter(|c| c.cmdline.first().is_none_or(|c0| !c0.ends_with("pasta")))
            .filter(|c| c.cmdline != watchdog)
            .collect();
        assert_eq!(
            children.len(),
            1,
            "contain has one child besides pasta and its watchdog, its init: {children:?}"
        );
        children[0].pid
    }

    /// The host PID of init's `sleep 1<token>`.
    #[track_caller]
    pub fn sleeper(&self) -> u32 {
        let marker = format!("1{}", self.token);
        wait_for_process("the container's sleep to start", &["sleep", &marker])
    }

    /// Ends the container through contain (SIGTERM, which init traps) and asserts that
    /// contain exits with init's status 0.
    #[track_caller]
    pub fn stop(self) {
        self.contain.signal(Signal::SIGTERM);
        let out = self.contain.finish();
        assert_eq!(code(&out), 0, "{}", describe(&out));
    }
}

/// The applet names `busybox --list` prints (once per process).
fn busybox_applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new("/bin/busybox")
            .arg("--list")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("running /bin/busybox --list: {e} (install busybox-static)")
            });
        assert!(out.status.success(), "busybox --list: {}", describe(&out));
        stdout(&out)
            .lines()
            .filter(|a| !a.is_empty() && *a != "busybox")
            .map(str::to_string)
            .collect()
    })
}

/// Everything a user would compare of the tree at `root`: per path (relative to `root`), its
/// type, mode, owners, mtime, ctime, size and contents (a hash, a link target, or a device
/// number). Compare two snapshots to see that something left a tree unchanged.
pub fn tree_snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut entries = BTreeMap::new();
    snapshot_entries(root, root, &mut entries);
    entries
}

fn snapshot_entries(root: &Path, path: &Path, entries: &mut BTreeMap<PathBuf, String>) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let kind = meta.file_type();
    let contents = if kind.is_symlink() {
        format!("-> {}", fs::read_link(path).unwrap().display())
    } else if kind.is_file() {
        match fs::read(path) {
            Ok(bytes) => {
                let mut hash = DefaultHasher::new();
                hash.write(&bytes);
                format!("{:016x}", hash.finish())
            }
            Err(e) => format!("unreadable: {e}"),
        }
    } else if kind.is_char_device() {
        format!("char {:x}", meta.rdev())
    } else {
        String::new()
    };
    entries.insert(
        path.strip_prefix(root).unwrap().to_path_buf(),
        format!(
            "{:o} {}:{} mtime {}.{} ctime {}.{} size {} {contents}",
            meta.mode(),
            meta.uid(),
            meta.gid(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.len()
        ),
    );
    if kind.is_dir() {
        if let Ok(children) = fs::read_dir(path) {
            for child in children.flatten() {
                snapshot_entries(root, &child.path(), entries);
            }
        }
    }
}

/// Reads a file a test expects to exist, as text.
#[track_caller]
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A cgroup v2 subtree made for a test under the hierarchy's root, as systemd makes one for a
/// unit with Delegate=yes: given to `owner` (directory and the files of
/// /sys/kernel/cgroup/delegate) or left root's. A process is placed in it by root (moving a
/// process needs write access to the common ancestor's cgroup.procs). Removed on drop.
pub struct TestCgroup {
    pub path: PathBuf,
    /// Its path as /proc/PID/cgroup shows it: `0::/NAME`.
    line: String,
}

impl TestCgroup {
    /// None (the test skipped, saying so) without a cgroup v2 hierarchy; as root only.
    pub fn new(owner: Option<(u32, u32)>) -> Option<TestCgroup> {
        let mountinfo = read(Path::new("/proc/self/mountinfo"));
        let Some(mount) = mountinfo.lines().find_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fields: Vec<&str> = before.split(' ').collect();
            (after.starts_with("cgroup2 ") && fields.get(3) == Some(&"/"))
                .then(|| PathBuf::from(fields[4]))
        }) else {
            skip("no cgroup v2 hierarchy is mounted");
            return None;
        };
        let name = format!("contain-tests.{}", unique_token());
        let path = mount.join(&name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        if let Some((uid, gid)) = owner {
            let delegate = read(Path::new("/sys/kernel/cgroup/delegate"));
            let files = std::iter::once(String::new()).chain(delegate.lines().map(String::from));
            for file in files {
                let target = path.join(&file);
                if target.exists() {
                    std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).unwrap();
                }
            }
        }
        Some(TestCgroup {
            path,
            line: format!("0::/{name}"),
        })
    }

    /// A shell script line that waits until [`TestCgroup::enter`] has moved its shell in, then
    /// runs `script`.
    pub fn wrap(&self, script: &str) -> String {
        format!(
            "until grep -qx '{}' /proc/self/cgroup; do sleep 0.05; done; {script}",
            self.line
        )
    }

    /// Moves process `pid` into the cgroup.
    pub fn enter(&self, pid: u32) {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", self.path.display()));
    }

    /// The cgroups below it.
    pub fn children(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.path)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect()
    }

    /// Nothing contain made is left below it, and no process in it.
    #[track_caller]
    pub fn assert_left_clean(&self) {
        assert_eq!(
            self.children(),
            Vec::<PathBuf>::new(),
            "cgroups left behind"
        );
        assert_eq!(
            read(&self.path.join("cgroup.procs")),
            "",
            "processes left behind"
        );
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Deepest first; what a failed test left running is killed (cgroup.kill, Linux 5.14).
        let _ = fs::write(self.path.join("cgroup.kill"), "1");
        fn remove(dir: &Path) {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
            for _ in 0..100 {
                if fs::remove_dir(dir).is_ok() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        remove(&self.path);
    }
}
