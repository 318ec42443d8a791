//! Integration tests of `inject`: entering a container that the test boots in the background
//! with `contain -c`, as the unprivileged test user and as root, judged by what the injected
//! command sees and what is left running afterwards.

use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use tests::*;

/// The container the tests inject into: busybox root, hostname `box` (left alone when init
/// lacks the capability to set it), booted as `who` with contain's `options` besides `-c`.
fn boot(who: As, options: &[&str]) -> BackgroundContainer {
    BackgroundContainer::boot(who, busybox_rootfs(), options, "hostname box 2>/dev/null; ")
}

/// Runs `test` with a container booted with `options` as the test user, and again as root
/// when the suite runs as root.
fn in_a_container_of_each_user(options: &[&str], mut test: impl FnMut(As, BackgroundContainer)) {
    for who in [As::User, As::Root] {
        if require(who) {
            test(who, boot(who, options));
        }
    }
}

/// [`boot`] without further options.
fn start(who: As) -> BackgroundContainer {
    boot(who, &[])
}

/// `inject PID ARGS...` run to the end as `who`.
fn inject(who: As, pid: u32, args: &[&str]) -> Output {
    output(inject_command(who, &[], pid, args))
}

/// Starts `inject SUPERVISOR sleep SECONDS` as `who` and waits for the sleep; returns inject
/// and the host PID of the sleep. `seconds` marks the sleep: a [`unique_token`] in it.
#[track_caller]
fn inject_sleep(who: As, target: &BackgroundContainer, seconds: &str) -> (Running, u32) {
    let cmd = inject_command(who, &[], target.supervisor(), &["sleep", seconds]);
    let injected = spawn(cmd);
    let sleep = wait_for_process("the injected sleep to start", &["sleep", seconds]);
    (injected, sleep)
}

/// Asserts that inject refused `pid` with status 125 and one line naming it and saying `why`.
#[track_caller]
fn expect_refusal(out: &Output, pid: u32, why: &str) {
    let line = expect_error(out, "inject", 125);
    assert_eq!(line, format!("inject: {pid}: {why}"));
}

#[test]
fn pgrep_contain_finds_the_supervisor_and_not_its_watchdog() {
    // `inject $(pgrep -n contain)`: the newest process named contain must be a supervisor,
    // so nothing contain starts after itself may bear its name.
    in_a_container_of_each_user(&[], |who, target| {
        let supervisor = target.supervisor();
        assert_eq!(comm(supervisor), "contain");
        let children = children_of(supervisor);
        assert!(children.len() >= 2, "init and the watchdog: {children:?}");
        for child in children {
            assert_ne!(comm(child.pid), "contain", "{child:?}");
        }
        let out = inject(who, supervisor, &["true"]);
        expect_success(&out);
        target.stop();
    });
}

#[test]
fn the_command_runs_in_the_containers_pid_namespace() {
    in_a_container_of_each_user(&[], |who, target| {
        let sleeper = target.sleeper();
        // `; true` keeps sh from replacing itself with ps.
        let out = inject(
            who,
            target.supervisor(),
            &["sh", "-c", "echo $$; ps -o pid,args; true"],
        );
        let text = expect_success(&out);
        let mut lines = text.lines();
        let pid: u32 = lines.next().unwrap().parse().expect("a PID first");
        assert!(
            pid > 1 && pid < 100,
            "the command's PID inside is {pid} ({who:?})"
        );
        // The header, then init, its sleep, the injected sh and ps: nothing of the host.
        let listed = ps_rows(lines, 2).unwrap_or_else(|| panic!("no ps table: {text}"));
        assert_eq!(listed.len(), 4, "ps inside lists {listed:?}");
        let (first, init_args) = &listed[0];
        assert_eq!(*first, 1, "{listed:?}");
        assert!(init_args.contains("hostname box"), "PID 1 is {init_args:?}");
        assert!(listed
            .iter()
            .any(|(p, a)| *p == pid && a.starts_with("sh -c echo")));
        assert!(listed
            .iter()
            .any(|(p, a)| *p != pid && a == &format!("sleep 1{}", target.token)));
        assert!(process_alive(sleeper));
        target.stop();
    });
}

#[test]
fn the_command_sees_the_containers_hostname_and_runs_as_its_root_in_its_root_directory() {
    in_a_container_of_each_user(&[], |who, target| {
        // Started from elsewhere, so that "/" is inject's doing.
        let mut cmd = inject_command(
            who,
            &[],
            target.supervisor(),
            &[
                "sh",
                "-c",
                "hostname; id -u; id -g; id -G; pwd; ls /tmp/ready",
            ],
        );
        cmd.current_dir(target.root.join("bin"));
        let out = output(cmd);
        assert_eq!(
            expect_success(&out),
            "box\n0\n0\n0\n/\n/tmp/ready\n",
            "as {who:?}"
        );
        target.stop();
    });
}

#[test]
fn files_written_by_the_command_are_the_containers() {
    in_a_container_of_each_user(&[], |who, target| {
        let script = "echo on-root > /tmp/from-inject; echo on-dev > /dev/from-inject";
        expect_success(&inject(who, target.supervisor(), &["sh", "-c", script]));
        // The container's root directory, and its own /dev tmpfs, seen through init.
        assert_eq!(read(&target.root.join("tmp/from-inject")), "on-root\n");
        let init_dev = format!("/proc/{}/root/dev/from-inject", target.init());
        assert_eq!(read(init_dev.as_ref()), "on-dev\n");
        assert!(
            !std::path::Path::new("/dev/from-inject").exists(),
            "the file landed in the host's /dev"
        );
        target.stop();
    });
}

#[test]
fn the_commands_status_passes_through() {
    let target = start(As::User);
    let pid = target.supervisor();
    let out = inject(As::User, pid, &["sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7, "{}", describe(&out));
    assert_eq!(stderr(&out), "");

    let out = inject(As::User, pid, &["sh", "-c", "kill -9 $$"]);
    assert_eq!(code(&out), 137, "{}", describe(&out));

    let out = inject(As::User, pid, &["no-such-command"]);
    let line = expect_error(&out, "inject", 127);
    assert!(line.contains("no-such-command"), "{line}");

    // In the container's root, /etc/passwd is a file that is not executable.
    let out = inject(As::User, pid, &["/etc/passwd"]);
    let line = expect_error(&out, "inject", 126);
    assert!(line.contains("/etc/passwd"), "{line}");
    target.stop();
}

#[test]
fn the_init_pid_works_as_well_as_the_supervisors() {
    in_a_container_of_each_user(&[], |who, target| {
        let out = inject(who, target.init(), &["hostname"]);
        assert_eq!(expect_success(&out), "box\n", "as {who:?}");
        target.stop();
    });
}

#[test]
fn stdin_and_the_variables_named_with_e_are_passed_with_container_set() {
    let target = start(As::User);
    let script = "cat; echo \"$FROM_HOST $container $PATH${NOT_NAMED-}\"";
    let options = ["-e", "FROM_HOST"];
    let mut cmd = inject_command(
        As::User,
        &options,
        target.supervisor(),
        &["sh", "-c", script],
    );
    cmd.env("FROM_HOST", "kept")
        .env("NOT_NAMED", "passed")
        .stdin(Stdio::piped());
    let mut running = spawn(cmd);
    {
        use std::io::Write;
        let mut stdin = running.stdin.take().unwrap();
        stdin.write_all(b"from stdin\n").unwrap();
    }
    let out = running.finish();
    // PATH is the container init's (contain gives init the classic one), not the host's.
    assert_eq!(
        expect_success(&out),
        "from stdin\nkept contain /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    target.stop();
}

#[test]
fn without_a_command_runs_shell_if_the_container_has_it_else_bin_sh() {
    let target = start(As::User);
    let pid = target.supervisor().to_string();
    // The shell reads the script from stdin; its command line says which shell it is.
    let which = |shell: &str| {
        let script = format!("echo 'cat /proc/$$/cmdline' | SHELL={shell} inject {pid}");
        let out = sh(As::User, &script);
        expect_success(&out).trim_end_matches('\0').to_string()
    };
    assert_eq!(which("/bin/ash"), "/bin/ash");
    assert_eq!(which("/usr/bin/no-such-shell"), "/bin/sh");
    target.stop();
}

#[test]
fn a_process_that_is_not_a_container_is_refused() {
    let target = start(As::User);
    // A process of the user's own outside any container.
    let token = unique_token();
    let outside = spawn(sh_command(As::User, &format!("exec sleep 1{token}")));
    let out = inject(As::User, outside.pid(), &["true"]);
    expect_refusal(
        &out,
        outside.pid(),
        "not a contain supervisor or container init",
    );
    // A process inside the container that is not its init.
    let sleeper = target.sleeper();
    let out = inject(As::User, sleeper, &["true"]);
    expect_refusal(&out, sleeper, "not a contain supervisor or container init");
    outside.signal(Signal::SIGKILL);
    drop(outside);
    target.stop();
}

#[test]
fn a_process_that_has_ended_is_refused() {
    let ended = Command::new("true").spawn().unwrap();
    let pid = ended.id();
    let _ = ended.wait_with_output();
    let out = inject(As::User, pid, &["true"]);
    expect_refusal(&out, pid, "no such process");
}

#[test]
fn another_users_process_is_refused() {
    // PID 1 of the host is root's.
    let out = inject(As::User, 1, &["true"]);
    expect_refusal(&out, 1, "belongs to another user (uid 0)");
    // So is a container that root booted, by its supervisor and by its init.
    if !require(As::Root) {
        return;
    }
    let target = start(As::Root);
    for pid in [target.supervisor(), target.init()] {
        // Root's container root runs as a host uid of root's choosing.
        let uid = process(pid).expect("the container runs").uid;
        let out = inject(As::User, pid, &["true"]);
        expect_refusal(&out, pid, &format!("belongs to another user (uid {uid})"));
    }
    target.stop();
}

#[test]
fn nothing_injected_outlives_the_container() {
    in_a_container_of_each_user(&[], |who, target| {
        let (injected, sleep) = inject_sleep(who, &target, &format!("2{}", target.token));
        target.stop();
        // The kernel kills every process of the PID namespace when its init ends.
        let out = injected.finish();
        assert_eq!(code(&out), 128 + 9, "{}", describe(&out));
        assert!(
            !process_alive(sleep),
            "the injected sleep survived ({who:?})"
        );
    });
}

#[test]
fn the_command_dies_with_inject_and_gets_its_sigterm() {
    let target = start(As::User);
    for (signal, status) in [(Signal::SIGKILL, None), (Signal::SIGTERM, Some(128 + 15))] {
        let marker = format!("3{}{}", target.token, signal as i32);
        let (injected, sleep) = inject_sleep(As::User, &target, &marker);
        injected.signal(signal);
        let out = injected.finish();
        if let Some(status) = status {
            assert_eq!(code(&out), status, "{}", describe(&out));
        }
        wait_until(&format!("sleep to end after {signal} to inject"), || {
            !process_alive(sleep)
        });
    }
    // The container itself goes on.
    assert_eq!(
        expect_success(&inject(As::User, target.supervisor(), &["hostname"])),
        "box\n"
    );
    target.stop();
}

#[test]
fn set_user_id_is_refused() {
    if !require(As::Root) {
        return;
    }
    // A set-user-ID copy owned by nobody: running it gives the test user another euid.
    let dir = TempDir::new();
    let copy = dir.join("inject");
    copy_executable(&bin("inject"), &copy);
    std::os::unix::fs::chown(&copy, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).unwrap();
    let nosuid = nix::sys::statvfs::statvfs(dir.path())
        .unwrap()
        .flags()
        .contains(nix::sys::statvfs::FsFlags::ST_NOSUID);
    if nosuid {
        skip("/tmp is mounted nosuid");
        return;
    }
    let mut cmd = Command::new(&copy);
    cmd.args(["1", "true"]);
    let uid = user().uid;
    cmd.env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .uid(uid)
        .gid(user().gid);
    let out = output(cmd);
    let line = expect_error(&out, "inject", 125);
    assert!(line.contains("set-user-ID"), "{line}");
}

#[test]
fn usage_errors_are_one_line() {
    for args in [&[][..], &["abc"], &["0"], &["-1"]] {
        let out = run(As::User, "inject", args);
        expect_error(&out, "inject", 125);
    }
    let out = run(As::User, "inject", ["--help"]);
    assert!(expect_success(&out).contains("Usage: inject"));
    let out = run(As::User, "inject", ["--version"]);
    assert!(expect_success(&out).starts_with("inject "));
}

#[test]
fn the_command_holds_no_more_than_the_containers_init() {
    in_a_container_of_each_user(
        &["--cap-drop", "net_raw,sys_admin", "--no-new-privs"],
        |who, target| {
            let init = ProcStatus::of(target.init());
            assert_eq!(init.field("NoNewPrivs"), "1", "init: {init:?}");
            // `; true` keeps sh from replacing itself with cat.
            let out = inject(
                who,
                target.supervisor(),
                &["sh", "-c", "cat /proc/self/status; true"],
            );
            let injected = ProcStatus::parse(&expect_success(&out));
            // sh's status, not cat's: same limits either way, as nothing changes them in between.
            assert_eq!(
                injected.lockdown(),
                init.lockdown(),
                "as {who:?}: [CapBnd, CapPrm, CapEff, CapAmb, NoNewPrivs]"
            );
            target.stop();
        },
    );
}

#[test]
fn user_runs_the_command_as_that_user_with_inits_ambient_capabilities_only() {
    if subordinate_ids(1001).is_none() {
        return;
    }
    // init runs as uid 1000 with one capability, as contain's --user example does.
    let target = boot(As::User, &USER_1000_WITH_NET_BIND_SERVICE);
    let init = ProcStatus::of(target.init());
    let script = "id -u; id -g; id -G; cat /proc/self/status; true";
    let out = inject(
        As::User,
        target.supervisor(),
        &["--user", "1000:1001", "sh", "-c", script],
    );
    let text = expect_success(&out);
    assert!(text.starts_with("1000\n1001\n1001\n"), "{text}");
    assert_eq!(
        ProcStatus::parse(&text).lockdown(),
        init.lockdown(),
        "{text}"
    );
    // init's environment is readable only by its uid: found from its PID all the same.
    let out = inject(As::User, target.init(), &["id", "-u"]);
    assert_eq!(expect_success(&out), "0\n");
    // Root inside holds only what init holds as well.
    let out = inject(
        As::User,
        target.supervisor(),
        &["sh", "-c", "id -u; cat /proc/self/status; true"],
    );
    let text = expect_success(&out);
    assert!(text.starts_with("0\n"), "{text}");
    let net_bind_service = 1u64 << 10;
    let status = ProcStatus::parse(&text);
    for key in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(status.mask(key), net_bind_service, "{key}: {text}");
    }
    target.stop();
}

#[test]
fn user_ids_the_container_does_not_map_are_refused_before_anything_runs() {
    let target = start(As::User);
    // The default map of an unprivileged container holds at most 65537 IDs.
    let out = inject(
        As::User,
        target.supervisor(),
        &["--user", "4000000", "sh", "-c", "touch /tmp/ran"],
    );
    let line = expect_error(&out, "inject", 125);
    assert!(
        line.contains("4000000") && line.contains("not mapped"),
        "{line}"
    );
    assert!(!target.root.join("tmp/ran").exists(), "the command ran");
    let out = run(
        As::User,
        "inject",
        ["--user", "nobody", &target.supervisor().to_string(), "true"],
    );
    expect_error(&out, "inject", 125);
    target.stop();
}

#[test]
fn a_namespace_init_of_another_tool_is_refused() {
    if subordinate_ids(5).is_none() {
        return;
    }
    // PID 1 of a PID namespace, unmarked, running as a uid other than namespace root (so its
    // environment cannot be read from outside): inject finds that out from inside.
    let token = unique_token();
    let marker = format!("5{token}");
    let script = format!(
        "exec unshare --map-users=auto --map-groups=auto --map-root-user --pid --fork \\
         --mount-proc -- setpriv --reuid=5 --regid=5 --clear-groups sleep {marker}"
    );
    let other = spawn(sh_command(As::User, &script));
    let sleep = wait_for_process("unshare's sleep to start", &["sleep", &marker]);
    let out = inject(As::User, sleep, &["true"]);
    expect_refusal(&out, sleep, "not a contain supervisor or container init");
    drop(other);
}
