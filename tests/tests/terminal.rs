//! Integration tests of what a command inside can do to its caller's terminal and process
//! group: under pseudo, contain and inject it can neither type into the caller's terminal
//! (ioctl TIOCSTI) nor stop or kill the caller's shell and its other processes with `kill 0`,
//! while ^C still reaches it and a shell under pseudo or inject keeps its job control.
//!
//! The caller's terminal is a pty the test makes: a shell runs as the leader of a session
//! whose controlling terminal it is (util-linux `setsid -c`), the way a login shell runs.

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::openpty;
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{self, SetArg};
use nix::unistd::Pid;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use tests::*;

/// How long a terminal session may take before the test gives up on it.
const LIMIT: Duration = Duration::from_secs(30);

/// A program that tries to type `echo INJECTED` into every terminal it holds: stdin, stdout,
/// stderr and /dev/tty (perl, from Debian's essential perl-base; busybox has nothing for it).
const TIOCSTI: &str = r#"my @fhs = (\*STDIN, \*STDOUT, \*STDERR);
if (open(my $tty, "+<", "/dev/tty")) { push @fhs, $tty }
for my $fh (@fhs) { ioctl($fh, 0x5412, $_) for split //, "echo INJECTED\n" }
print "tried\n";"#;

/// The caller's terminal: a pty whose master the test holds.
struct Terminal {
    master: OwnedFd,
    slave: OwnedFd,
    /// Everything read from the master so far.
    output: Vec<u8>,
}

impl Terminal {
    fn new() -> Terminal {
        let pty = openpty(None, None).expect("opening a pty");
        let flags = OFlag::from_bits_retain(fcntl(&pty.master, FcntlArg::F_GETFL).unwrap());
        fcntl(&pty.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
        Terminal {
            master: pty.master,
            slave: pty.slave,
            output: Vec::new(),
        }
    }

    /// Starts `script` as `who` in a shell that leads a session with this terminal as its
    /// controlling terminal and as its stdin, stdout and stderr. `set -m` gives it job
    /// control, so it runs each command as the terminal's foreground job, as an interactive
    /// shell does.
    fn start(&self, who: As, script: &str) -> Child {
        let mut cmd = sh_command(who, r#"exec setsid -w -c /bin/sh -c "$CALLER""#);
        cmd.env("CALLER", script);
        let slave = || Stdio::from(self.slave.try_clone().unwrap());
        cmd.stdin(slave()).stdout(slave()).stderr(slave());
        cmd.spawn().expect("starting the caller's shell")
    }

    /// Reads what the terminal shows so far.
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = nix::unistd::read(&self.master, &mut buf) {
            self.output.extend_from_slice(&buf[..n]);
        }
    }

    /// The terminal's output so far, as text.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).replace("\r\n", "\n")
    }

    /// Waits until the terminal has shown `expected`, failing the test after [`LIMIT`].
    #[track_caller]
    fn wait_for(&mut self, expected: &str, caller: &mut Child) {
        let deadline = Instant::now() + LIMIT;
        loop {
            self.drain();
            if self.text().contains(expected) {
                return;
            }
            if Instant::now() > deadline {
                end_session(caller);
                panic!("the terminal never showed {expected:?}: {:?}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Types `keys` on the terminal.
    fn type_keys(&self, keys: &str) {
        nix::unistd::write(&self.master, keys.as_bytes()).expect("typing on the terminal");
    }

    /// Waits for the caller's shell to end (within [`LIMIT`]) and returns its exit code with
    /// everything the terminal showed.
    #[track_caller]
    fn finish(&mut self, mut caller: Child) -> (i32, String) {
        let deadline = Instant::now() + LIMIT;
        loop {
            self.drain();
            if let Some(status) = caller.try_wait().unwrap() {
                self.drain();
                let Some(code) = status.code() else {
                    panic!("the caller's shell was killed: {status}; {:?}", self.text());
                };
                return (code, self.text());
            }
            if Instant::now() > deadline {
                end_session(&mut caller);
                panic!("the caller's shell did not end: {:?}", self.text());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Input waiting on the terminal for the caller's shell to read next: what a program
    /// typed into it with TIOCSTI.
    fn pending_input(&self) -> String {
        // Raw and non-blocking, so that partial lines show too and nothing waits.
        let mut raw = termios::tcgetattr(&self.slave).unwrap();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&self.slave, SetArg::TCSANOW, &raw).unwrap();
        raw.control_chars[libc::VMIN] = 0;
        raw.control_chars[libc::VTIME] = 0;
        termios::tcsetattr(&self.slave, SetArg::TCSANOW, &raw).unwrap();
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = nix::unistd::read(self.slave.as_fd(), &mut buf) {
            pending.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&pending).into_owned()
    }
}

/// Kills every process of the session `caller` leads (the one `setsid -w` made, whose PID is
/// the only child of `caller`), then `caller`: for a test that failed half-way.
fn end_session(caller: &mut Child) {
    for leader in children_of(caller.id()) {
        for pid in session_members(leader.pid) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    let _ = caller.kill();
    let _ = caller.wait();
}

/// The PIDs of the processes in session `sid`.
fn session_members(sid: u32) -> Vec<u32> {
    live_processes()
        .into_iter()
        .filter(|p| {
            let stat = fs::read_to_string(format!("/proc/{}/stat", p.pid)).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rfind(')')
                .map(|end| stat[end + 2..].split(' ').collect())
                .unwrap_or_default();
            fields.get(3) == Some(&sid.to_string().as_str())
        })
        .map(|p| p.pid)
        .collect()
}

/// A busybox root that also has the host's /usr (for perl), bound by an -i hook: contain's
/// options and the root.
fn root_with_host_usr() -> (Vec<String>, TempDir) {
    let root = busybox_rootfs();
    root.mkdir("usr");
    let mut hook = "mount --rbind /usr usr".to_string();
    for lib in ["lib", "lib64"] {
        let host = std::path::Path::new("/").join(lib);
        match fs::read_link(&host) {
            // A merged /usr (Debian 12): the same link inside.
            Ok(target) => symlink(target, root.join(lib)).unwrap(),
            Err(_) if host.is_dir() => {
                root.mkdir(lib);
                hook.push_str(&format!(" && mount --rbind /{lib} {lib}"));
            }
            Err(_) => {}
        }
    }
    (vec!["-i".to_string(), hook], root)
}

/// The caller's shell runs `tool_line` (a tool running the TIOCSTI program), with stdin from
/// the terminal or, with `stdin_terminal` false, from /dev/null; asserts the program ran and
/// nothing waits as input on the caller's terminal afterwards.
#[track_caller]
fn expect_no_injection(who: As, tool_line: &str, stdin_terminal: bool, what: &str) {
    let mut terminal = Terminal::new();
    let redirect = if stdin_terminal { "" } else { "</dev/null" };
    let script = format!("set -m; {tool_line} {redirect}; echo status=$?");
    let caller = terminal.start(who, &script);
    let (code, shown) = terminal.finish(caller);
    assert_eq!(code, 0, "{what}: {shown:?}");
    assert!(
        shown.contains("tried"),
        "{what}: the program did not run: {shown:?}"
    );
    assert!(shown.contains("status=0"), "{what}: {shown:?}");
    let pending = terminal.pending_input();
    assert!(
        !pending.contains("INJECTED"),
        "{what}: the command typed {pending:?} into the caller's terminal ({shown:?})"
    );
}

/// The TIOCSTI program as a shell word.
fn tiocsti_program() -> String {
    format!("perl -e '{}'", TIOCSTI.replace('\'', r"'\''"))
}

#[test]
fn pseudo_cannot_type_into_the_callers_terminal() {
    let program = tiocsti_program();
    for stdin_terminal in [true, false] {
        expect_no_injection(
            As::User,
            &format!("pseudo {program}"),
            stdin_terminal,
            &format!("pseudo, stdin a terminal: {stdin_terminal}"),
        );
        expect_no_injection(
            As::User,
            &format!("pseudo -p {program}"),
            stdin_terminal,
            &format!("pseudo -p, stdin a terminal: {stdin_terminal}"),
        );
    }
}

#[test]
fn pseudo_run_by_root_cannot_type_into_the_callers_terminal() {
    if !require(As::Root) {
        return;
    }
    let program = tiocsti_program();
    for stdin_terminal in [true, false] {
        expect_no_injection(
            As::Root,
            &format!("pseudo {program}"),
            stdin_terminal,
            &format!("pseudo as root, stdin a terminal: {stdin_terminal}"),
        );
    }
}

#[test]
fn contain_cannot_type_into_the_callers_terminal() {
    let (options, root) = root_with_host_usr();
    let program = tiocsti_program();
    for mode in ["-c", ""] {
        for stdin_terminal in [true, false] {
            let line = format!(
                "contain -i '{}' {mode} {} {program}",
                options[1],
                root.path_arg()
            );
            expect_no_injection(
                As::User,
                &line,
                stdin_terminal,
                &format!("contain {mode}, stdin a terminal: {stdin_terminal}"),
            );
        }
    }
}

#[test]
fn inject_cannot_type_into_the_callers_terminal() {
    let (options, root) = root_with_host_usr();
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let container = BackgroundContainer::boot(As::User, root, &options, "");
    let program = tiocsti_program();
    for stdin_terminal in [true, false] {
        expect_no_injection(
            As::User,
            &format!("inject {} {program}", container.supervisor()),
            stdin_terminal,
            &format!("inject, stdin a terminal: {stdin_terminal}"),
        );
    }
    container.stop();
}

/// A command that stops its own process group with `kill -STOP 0`, after starting a helper
/// in a session of its own that continues the group a second later; it then prints
/// `resumed`. `mark` names the helper's file in /tmp, which says the helper has its session.
fn stops_its_group(mark: &str) -> String {
    format!(
        r#"sh -c 'setsid sh -c "echo > {mark}; sleep 1; kill -CONT -$$" & while [ ! -e {mark} ]; do sleep 0.1; done; rm {mark}; kill -STOP 0; echo resumed'"#
    )
}

/// Runs `sleep 1000<token>` beside `tool_line` in one shell (so in one process group), and
/// asserts that the shell and its sleep outlive whatever the tool's command signals, and that
/// the sleep was never stopped. Returns what the script printed.
#[track_caller]
fn expect_group_untouched(tool_line: &str, what: &str) -> String {
    let token = unique_token();
    let script = format!(
        "sleep 1000{token} & s=$!
         {tool_line}
         echo tool=$?
         state=$(sed 's/.*) //' /proc/$s/stat | cut -d' ' -f1)
         echo sibling=$state
         kill -KILL $s"
    );
    let out = spawn(sh_command(As::User, &script)).finish_within(LIMIT);
    let printed = expect_success(&out);
    assert!(
        printed.contains("sibling=S") || printed.contains("sibling=R"),
        "{what}: the caller's other process was stopped or killed: {}",
        describe(&out)
    );
    assert!(processes_marked(&token).is_empty());
    printed
}

#[test]
fn kill_0_under_pseudo_stays_in_the_commands_group() {
    let printed = expect_group_untouched("pseudo sh -c 'kill -KILL 0'", "pseudo, kill -KILL 0");
    assert!(printed.contains("tool=137"), "{printed}");
    let printed = expect_group_untouched("pseudo -p sh -c 'kill -KILL 0'", "pseudo -p");
    assert!(printed.contains("tool=137"), "{printed}");
    // The command stops its own group, and a process of another session wakes it up again.
    let printed = expect_group_untouched(
        &format!(
            "pseudo {}",
            stops_its_group(&format!("/tmp/contain-tests-cont.{}", unique_token()))
        ),
        "pseudo, kill -STOP 0",
    );
    assert!(
        printed.contains("resumed") && printed.contains("tool=0"),
        "{printed}"
    );
}

#[test]
fn kill_0_under_contain_c_stays_in_the_container() {
    let root = busybox_rootfs();
    let line = format!(
        "contain -c {} sh -c 'kill -KILL 0; kill -STOP 0; echo init-survived'",
        root.path_arg()
    );
    let printed = expect_group_untouched(&line, "contain -c");
    assert!(
        printed.contains("init-survived") && printed.contains("tool=0"),
        "{printed}"
    );
}

#[test]
fn kill_0_under_inject_stays_in_the_commands_group() {
    let container = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    let pid = container.supervisor();
    let printed = expect_group_untouched(
        &format!("inject {pid} sh -c 'kill -KILL 0'"),
        "inject, kill -KILL 0",
    );
    assert!(printed.contains("tool=137"), "{printed}");
    let printed = expect_group_untouched(
        &format!("inject {pid} {}", stops_its_group("/tmp/cont")),
        "inject, kill -STOP 0",
    );
    assert!(
        printed.contains("resumed") && printed.contains("tool=0"),
        "{printed}"
    );
    container.stop();
}

/// A command that says `ready`, then waits for ^C and exits 3 on it.
const WAITS_FOR_INTERRUPT: &str =
    "sh -c 'trap \"echo got-INT; exit 3\" INT; echo ready; while :; do sleep 0.1; done'";

/// Runs `tool_line` from a shell on the terminal, types ^C once it is ready, and asserts that
/// the command got it (and exited 3) while the caller's shell went on.
#[track_caller]
fn expect_interrupt_reaches(tool_line: &str, stdin_terminal: bool, what: &str) {
    let mut terminal = Terminal::new();
    let redirect = if stdin_terminal { "" } else { "</dev/null" };
    let script = format!("set -m; {tool_line} {redirect}; echo status=$?");
    let mut caller = terminal.start(As::User, &script);
    terminal.wait_for("ready", &mut caller);
    terminal.type_keys("\x03");
    let (code, shown) = terminal.finish(caller);
    assert_eq!(code, 0, "{what}: {shown:?}");
    assert!(
        shown.contains("got-INT") && shown.contains("status=3"),
        "{what}: {shown:?}"
    );
}

#[test]
fn ctrl_c_reaches_the_command() {
    let container = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    let inject = format!("inject {} {WAITS_FOR_INTERRUPT}", container.supervisor());
    for stdin_terminal in [true, false] {
        let mode = format!("stdin a terminal: {stdin_terminal}");
        expect_interrupt_reaches(
            &format!("pseudo {WAITS_FOR_INTERRUPT}"),
            stdin_terminal,
            &format!("pseudo, {mode}"),
        );
        expect_interrupt_reaches(
            &format!("pseudo -p {WAITS_FOR_INTERRUPT}"),
            stdin_terminal,
            &format!("pseudo -p, {mode}"),
        );
        expect_interrupt_reaches(&inject, stdin_terminal, &format!("inject, {mode}"));
    }
    container.stop();
}

/// Runs an interactive shell through `tool_line` on the terminal, suspends a job with ^Z,
/// and asserts the shell reports it stopped (job control works), then ends it all.
#[track_caller]
fn expect_job_control(tool_line: &str, what: &str) {
    let mut terminal = Terminal::new();
    let token = unique_token();
    let script = format!("set -m; {tool_line}; echo status=$?");
    let mut caller = terminal.start(As::User, &script);
    terminal.type_keys("echo shell-up\n");
    terminal.wait_for("shell-up\n", &mut caller);
    terminal.type_keys(&format!("sleep 1{token}\n"));
    wait_until("the job to start", || !processes_marked(&token).is_empty());
    terminal.type_keys("\x1a");
    terminal.wait_for("Stopped", &mut caller);
    terminal.type_keys("kill -9 %1\n");
    wait_until("the job to end", || processes_marked(&token).is_empty());
    // The shell reports the end with the next prompt; then it has no stopped job to keep.
    terminal.type_keys("jobs\n");
    terminal.wait_for("Killed", &mut caller);
    terminal.type_keys("exit 0\n");
    let (code, shown) = terminal.finish(caller);
    assert_eq!(code, 0, "{what}: {shown:?}");
    assert!(shown.contains("status=0"), "{what}: {shown:?}");
}

#[test]
fn a_shell_keeps_job_control() {
    expect_job_control("pseudo /bin/sh -i", "pseudo");
    let container = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    expect_job_control(
        &format!("inject {} /bin/sh -i", container.supervisor()),
        "inject",
    );
    container.stop();
}

/// Runs `tool_line` (a tool running `sh -c 'sleep 1<token>; echo after'`) from a shell on the
/// terminal, types ^C once the sleep runs, and asserts that the sleep, a child of the
/// command, got it too: nothing marked with `token` is left and the tool has ended.
#[track_caller]
fn expect_interrupt_reaches_children(
    tool_line: &str,
    token: &str,
    stdin_terminal: bool,
    what: &str,
) {
    let mut terminal = Terminal::new();
    let redirect = if stdin_terminal { "" } else { "</dev/null" };
    let script = format!("set -m; {tool_line} {redirect}; echo status=$?");
    let caller = terminal.start(As::User, &script);
    // The sleep itself: the command lines of the tool and the shells hold the token too.
    let sleep = format!("1{token}");
    wait_until("the sleep to start", || {
        !processes_running(&["sleep", &sleep]).is_empty()
    });
    terminal.type_keys("\x03");
    let (code, shown) = terminal.finish(caller);
    assert_eq!(code, 0, "{what}: {shown:?}");
    assert!(
        processes_running(&["sleep", &sleep]).is_empty(),
        "{what}: the sleep lives on: {shown:?}"
    );
}

#[test]
fn ctrl_c_reaches_the_commands_children() {
    let container = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    let root = busybox_rootfs();
    for stdin_terminal in [true, false] {
        let mode = format!("stdin a terminal: {stdin_terminal}");
        for tool in [
            "pseudo".to_string(),
            "pseudo -p".to_string(),
            format!("inject {}", container.supervisor()),
            format!("contain -c {}", root.path_arg()),
        ] {
            let token = unique_token();
            expect_interrupt_reaches_children(
                &format!("{tool} sh -c 'sleep 1{token}; echo after'"),
                &token,
                stdin_terminal,
                &format!("{tool}, {mode}"),
            );
        }
    }
    container.stop();
}

/// Where a tool's command leaves its marks: the directory as the command sees it, and as the
/// host sees it.
struct Marks {
    inside: String,
    outside: std::path::PathBuf,
}

/// The tools whose command a process may outlive: pseudo, and inject into `container`, with
/// the directory each command writes its marks to.
fn tools_leaving_processes(container: &BackgroundContainer, dir: &TempDir) -> Vec<(String, Marks)> {
    // pseudo run by root is container root, a host uid of its own, which may write only here.
    let shared = dir.mkdir("marks");
    fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    vec![
        (
            "pseudo".to_string(),
            Marks {
                inside: shared.to_str().unwrap().to_string(),
                outside: shared.clone(),
            },
        ),
        (
            format!("inject {}", container.supervisor()),
            Marks {
                inside: "/tmp".to_string(),
                outside: container.root.join("tmp"),
            },
        ),
    ]
}

/// The caller runs `tool sh -c ...` with `redirects` (some of stdin, stdout and stderr
/// elsewhere than the terminal); the command leaves a process behind (deaf to SIGHUP) that,
/// once the tool has returned, writes to stderr and reads a line from stdin (as fd 3: a shell
/// without job control gives a job in the background /dev/null as stdin). The test types a
/// line on the caller's terminal then: it stays there for the caller, and nothing the process
/// wrote shows.
#[track_caller]
fn expect_terminal_kept_from_leftovers(who: As, tool: &str, marks: &Marks, redirects: &str) {
    let (i, o) = (&marks.inside, &marks.outside);
    let leftover = format!(
        "trap \"\" HUP; exec 3<&0; (while [ ! -e {i}/go ]; do sleep 0.1; done; \
          echo LEAKED-WRITE >&2; touch {i}/wrote; head -n 1 <&3 > {i}/stolen; touch {i}/read) \
         >/dev/null & echo started >&2"
    );
    let script = format!(
        "set -m; {tool} sh -c '{leftover}' {redirects}; echo status=$?; \
         while [ ! -e {out}/read ]; do sleep 0.1; done; echo caller-done",
        out = o.display()
    );
    let what = format!("{tool} {redirects}");
    let mut terminal = Terminal::new();
    let mut caller = terminal.start(who, &script);
    terminal.wait_for("status=0", &mut caller);
    fs::write(o.join("go"), "").unwrap();
    wait_until("the process left behind to write", || {
        o.join("wrote").exists()
    });
    terminal.type_keys("SECRET-LINE\n");
    let (code, shown) = terminal.finish(caller);
    assert_eq!(code, 0, "{what}: {shown:?}");
    let stolen = fs::read_to_string(o.join("stolen")).unwrap_or_default();
    assert!(
        !stolen.contains("SECRET"),
        "{what}: a process left behind read the caller's terminal: {stolen:?}"
    );
    assert!(
        !shown.contains("LEAKED-WRITE"),
        "{what}: a process left behind wrote to the caller's terminal: {shown:?}"
    );
    assert!(
        terminal.pending_input().contains("SECRET-LINE"),
        "{what}: the line typed is not left for the caller"
    );
    for mark in ["go", "wrote", "stolen", "read"] {
        let _ = fs::remove_file(o.join(mark));
    }
}

#[test]
fn a_process_left_behind_cannot_use_the_callers_terminal() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let container = BackgroundContainer::boot(who, busybox_rootfs(), &[], "");
        let dir = TempDir::new();
        for (tool, marks) in tools_leaving_processes(&container, &dir) {
            // Each mix of terminals among stdin, stdout and stderr the process can use: its
            // stdin and stderr, its stdin alone, all three, its stderr alone.
            for redirects in [
                "| cat",
                "2>/dev/null | cat",
                "",
                "</dev/null",
                "</dev/null >/dev/null",
            ] {
                expect_terminal_kept_from_leftovers(who, &tool, &marks, redirects);
            }
        }
        container.stop();
    }
}

/// A command that says `ready` on its terminal, reads a line and writes `out:LINE` to stdout
/// and `err:LINE` to stderr.
const ECHOES_A_LINE: &str =
    "sh -c 'echo ready >/dev/tty; read line; echo out:$line; echo err:$line >&2'";

/// The caller runs `tool ECHOES_A_LINE` in `line` (a shell line with the tool's redirections)
/// and types `typed` once the command is ready; returns what the terminal showed, after
/// checking the tool's status was 0.
#[track_caller]
fn relayed(who: As, line: &str, typed: &str) -> String {
    let mut terminal = Terminal::new();
    let script = format!("set -m; {line}; echo status=$?");
    let mut caller = terminal.start(who, &script);
    terminal.wait_for("ready", &mut caller);
    terminal.type_keys(typed);
    let (code, shown) = terminal.finish(caller);
    assert_eq!(code, 0, "{line}: {shown:?}");
    assert!(shown.contains("status=0"), "{line}: {shown:?}");
    shown
}

#[test]
fn only_the_terminals_among_stdin_stdout_and_stderr_are_relayed() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let container = BackgroundContainer::boot(who, busybox_rootfs(), &[], "");
        let dir = TempDir::new();
        for (tool, marks) in tools_leaving_processes(&container, &dir) {
            let cmd = format!("{tool} {ECHOES_A_LINE}");
            let o = &marks.outside;

            // Typed in, stdout to a pipe, stderr to the terminal.
            let shown = relayed(who, &format!("{cmd} | sed s/^/piped:/"), "typed\n");
            assert!(
                shown.contains("piped:out:typed\n"),
                "{cmd} | sed: {shown:?}"
            );
            assert!(shown.contains("err:typed\n"), "{cmd} | sed: {shown:?}");
            assert!(!shown.contains("piped:err"), "{cmd} | sed: {shown:?}");

            // From a pipe, out to the terminal.
            let shown = relayed(who, &format!("echo piped-in | {cmd}"), "");
            assert!(
                shown.contains("out:piped-in\n") && shown.contains("err:piped-in\n"),
                "echo | {cmd}: {shown:?}"
            );

            // Typed in, stdout to the terminal, stderr to a file.
            let file = o.join("stderr");
            let shown = relayed(who, &format!("{cmd} 2>{}", file.display()), "typed\n");
            assert!(shown.contains("out:typed\n"), "{cmd} 2>file: {shown:?}");
            assert!(!shown.contains("err:typed"), "{cmd} 2>file: {shown:?}");
            assert_eq!(
                fs::read_to_string(&file).unwrap(),
                "err:typed\n",
                "{cmd} 2>file"
            );
            fs::remove_file(&file).unwrap();

            // Only stderr a terminal.
            let file = o.join("stdout");
            let shown = relayed(who, &format!("{cmd} </dev/null >{}", file.display()), "");
            assert!(shown.contains("err:\n"), "{cmd} <null >file: {shown:?}");
            assert_eq!(
                fs::read_to_string(&file).unwrap(),
                "out:\n",
                "{cmd} <null >file"
            );
            fs::remove_file(&file).unwrap();

            // All three terminals.
            let shown = relayed(who, &cmd, "typed\n");
            assert!(
                shown.contains("out:typed\n") && shown.contains("err:typed\n"),
                "{cmd}: {shown:?}"
            );
        }
        container.stop();
    }
}

#[test]
fn a_tool_started_in_the_background_relays_input_once_in_the_foreground() {
    let container = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    let dir = TempDir::new();
    // dash's `fg` continues a running job with SIGCONT, bash's does not.
    for (shell, (tool, marks)) in ["sh", "bash"].into_iter().flat_map(|shell| {
        tools_leaving_processes(&container, &dir)
            .into_iter()
            .map(move |t| (shell, t))
    }) {
        let go = marks.outside.join("fg");
        let script = format!(
            "set -m; {tool} {ECHOES_A_LINE} & echo tool=$!; \
             while [ ! -e {go} ]; do sleep 0.1; done; fg >/dev/null; echo status=$?",
            go = go.display()
        );
        let tool = format!("{shell}: {tool}");
        let mut terminal = Terminal::new();
        let mut caller = terminal.start(
            As::User,
            &format!("exec {shell} -c {}", shell_quote(&script)),
        );
        terminal.wait_for("ready", &mut caller);
        // Typed while the caller's shell is in the foreground: the tool in the background
        // neither takes it nor is stopped for trying.
        terminal.type_keys("typed\n");
        let pid: u32 = terminal
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("tool="))
            .and_then(|p| p.trim().parse().ok())
            .expect("the tool's PID");
        let state = process(pid).map(|p| p.state);
        assert!(
            matches!(state, Some('S' | 'R')),
            "{tool}: the tool in the background is {state:?}"
        );
        assert!(
            !terminal.text().contains("out:"),
            "{tool}: {:?}",
            terminal.text()
        );
        fs::write(&go, "").unwrap();
        let (code, shown) = terminal.finish(caller);
        assert_eq!(code, 0, "{tool}: {shown:?}");
        assert!(
            shown.contains("out:typed\n") && shown.contains("status=0"),
            "{tool}: {shown:?}"
        );
        fs::remove_file(&go).unwrap();
    }
    container.stop();
}

#[test]
fn in_a_pipeline_the_terminal_keeps_its_modes_and_its_end_of_file() {
    let container = BackgroundContainer::boot(As::User, busybox_rootfs(), &[], "");
    let dir = TempDir::new();
    for (tool, _) in tools_leaving_processes(&container, &dir) {
        // (Not cat: busybox's reads a terminal to its end before it writes, with sendfile.)
        let line = format!(
            "{tool} sh -c 'echo ready >/dev/tty; while read l; do echo \"$l\"; done; echo ended' \
             | sed s/^/piped:/"
        );
        let mut terminal = Terminal::new();
        let mut caller = terminal.start(As::User, &format!("set -m; {line}; echo status=$?"));
        terminal.wait_for("ready", &mut caller);
        // Not switched to raw mode: `less` or another program of the pipeline may set the
        // terminal's modes, and would find (and restore) ours.
        let modes = termios::tcgetattr(&terminal.slave).unwrap();
        assert!(
            modes.local_flags.contains(termios::LocalFlags::ICANON)
                && modes.local_flags.contains(termios::LocalFlags::ECHO),
            "{tool}: the caller's terminal is in raw mode"
        );
        terminal.type_keys("first line\n");
        terminal.wait_for("piped:first line\n", &mut caller);
        // ^D: the end of the input, as on the terminal itself.
        terminal.type_keys("\x04");
        let (code, shown) = terminal.finish(caller);
        assert_eq!(code, 0, "{line}: {shown:?}");
        assert!(shown.contains("piped:ended\nstatus=0"), "{line}: {shown:?}");
        // Echoed once, by the caller's terminal; not again by the pty.
        assert_eq!(shown.matches("first line").count(), 2, "{line}: {shown:?}");
    }
    container.stop();
}
