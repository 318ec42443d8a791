//! Integration tests of `contain`: what a user checks in and around a container booted from a
//! busybox root file system, as the unprivileged test user (and once as root).
//!
//! Most tests run in both modes: with the console emulation (the default) and with `-c`.

use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::Output;
use std::time::Duration;
use tests::*;

/// Waits until the container's init, the child of contain, runs `program`, and returns it.
#[track_caller]
fn init_of(contain_pid: u32, program: &str) -> Process {
    wait_for(
        &format!("contain ({contain_pid}) to start {program}"),
        || {
            children_of(contain_pid)
                .into_iter()
                .find(|p| p.cmdline.first().map(String::as_str) == Some(program))
        },
    )
}

/// The PID of `pid` in each PID namespace it is in, outermost first (NSpid of its status).
fn namespace_pids(pid: u32) -> Vec<u32> {
    read(format!("/proc/{pid}/status").as_ref())
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .expect("NSpid in /proc/PID/status")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[track_caller]
fn expect_nothing_left(token: &str) {
    let left = processes_marked(token);
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// Asserts that contain exited with `status` in the mode of `options`.
#[track_caller]
fn expect_status(out: &Output, status: i32, options: &[&str]) {
    assert_eq!(code(out), status, "{}: {}", mode(options), describe(out));
}

/// Asserts that contain refused with `status` and one line on stderr (returned), wrote
/// nothing to stdout and left nothing marked with `token` running. `what` names the case.
#[track_caller]
fn expect_refused(out: &Output, status: i32, what: &str, token: &str) -> String {
    let line = expect_error(out, "contain", status);
    assert!(out.stdout.is_empty(), "{what}: {}", describe(out));
    expect_nothing_left(token);
    line
}

/// Starts `contain OPTIONS... ROOT sh -c SCRIPT` as the test user, without waiting for it.
fn start_sh(options: &[&str], root: &TempDir, script: &str) -> Running {
    spawn(contain_command(
        As::User,
        options,
        root,
        &["sh", "-c", script],
    ))
}

/// Runs `contain OPTIONS... ROOT sh -c SCRIPT` to the end as the test user.
fn run_sh(options: &[&str], root: &TempDir, script: &str) -> Output {
    start_sh(options, root, script).finish()
}

/// Kills the container's `init` from the host, and asserts that contain then exits with
/// 128 + SIGKILL and leaves nothing marked with `token` running.
#[track_caller]
fn kill_init(running: Running, init: &Process, options: &[&str], token: &str) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(init.pid as i32), Signal::SIGKILL).unwrap();
    expect_status(&running.finish(), 137, options);
    expect_nothing_left(token);
}

/// Asserts that contain succeeded in the mode of `options` and wrote exactly `data`.
#[track_caller]
fn expect_output(out: &Output, data: &[u8], options: &[&str]) {
    assert!(out.status.success(), "{}: {}", mode(options), out.status);
    assert!(
        out.stdout == data,
        "{}: {} bytes expected, {} came out; first difference at byte {:?}",
        mode(options),
        data.len(),
        out.stdout.len(),
        data.iter().zip(&out.stdout).position(|(a, b)| a != b)
    );
}

/// Waits until a file exists (the container's way of saying it is ready).
#[track_caller]
fn wait_for_file(path: &std::path::Path) {
    wait_until(&format!("{} to appear", path.display()), || path.exists());
}

/// Interface names in the output of `ip -o link` ("2: veth0@veth1: <...>" gives "veth0").
fn interface_names(ip_link: &str) -> BTreeSet<String> {
    ip_link
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap().to_string())
        .collect()
}

fn host_hostname() -> String {
    read("/proc/sys/kernel/hostname".as_ref())
        .trim_end()
        .to_string()
}

/// Runs `sh -c script` in a container in each mode and asserts that it prints `expected`.
#[track_caller]
fn expect_printed_in_each_mode(script: &str, expected: &str) {
    let root = busybox_rootfs();
    for options in MODES {
        let out = run_sh(options, &root, script);
        assert_eq!(expect_success(&out), expected, "{}", mode(options));
    }
}

#[test]
fn init_is_pid_1() {
    expect_printed_in_each_mode("echo $$", "1\n");
}

#[test]
fn ps_sees_only_the_containers_processes() {
    let root = busybox_rootfs();
    for options in MODES {
        // `; true` keeps sh from replacing itself with ps.
        let out = run_sh(options, &root, "ps -o pid,comm; true");
        let text = expect_success(&out);
        let what = format!("{}: ps listed {text:?}", mode(options));
        let listed = ps_rows(text.lines(), 2).unwrap_or_else(|| panic!("{what}"));
        assert_eq!(listed.len(), 2, "{what}");
        assert!(listed.contains(&(1, "sh".into())), "{what}");
        assert!(listed.iter().any(|(_, c)| c == "ps"), "{what}");
    }
}

#[test]
fn the_user_is_root_inside() {
    expect_printed_in_each_mode("id -u; id -g", "0\n0\n");
}

#[test]
fn chown_inside_gives_files_to_subordinate_ids() {
    let Some(_) = subordinate_ids(1000) else {
        return;
    };
    let root = busybox_rootfs();
    let out = run_sh(
        &[],
        &root,
        "touch /tmp/mine /tmp/given && chown 1000:1000 /tmp/given && stat -c %u:%g /tmp/given",
    );
    assert_eq!(expect_success(&out), "1000:1000\n");
    let u = user();
    assert_eq!(owner(&root.join("tmp/mine")), (u.uid, u.gid));
    assert_eq!(
        owner(&root.join("tmp/given")),
        (u.host_uid(1000).unwrap(), u.host_gid(1000).unwrap())
    );
}

#[test]
fn hostname_changes_only_inside() {
    let root = busybox_rootfs();
    let before = host_hostname();
    let name = format!("c{}", unique_token());
    let out = run_sh(&[], &root, &format!("hostname {name} && hostname"));
    assert_eq!(expect_success(&out), format!("{name}\n"));
    assert_eq!(host_hostname(), before);
}

#[test]
fn own_network_has_only_loopback_and_allows_veth() {
    let root = busybox_rootfs();
    let out = run_sh(
        &[],
        &root,
        "ip -o link && echo -- && ip link add type veth && ip -o link",
    );
    let text = expect_success(&out);
    let (before, after) = text.split_once("--\n").expect("both listings");
    assert_eq!(interface_names(before), BTreeSet::from(["lo".to_string()]));
    assert_eq!(
        interface_names(after),
        BTreeSet::from(["lo".to_string(), "veth0".to_string(), "veth1".to_string()])
    );
}

#[test]
fn host_network_is_shared_with_n() {
    let root = busybox_rootfs();
    let host: BTreeSet<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let out = contain(As::User, &["-n"], &root, &["ip", "-o", "link"]);
    assert_eq!(interface_names(&expect_success(&out)), host);
}

#[test]
fn only_stdin_stdout_and_stderr_are_inherited() {
    let root = busybox_rootfs();
    for options in MODES {
        let script = format!(
            "exec 7</etc/passwd 9>/dev/null; contain {} {} ls /proc/self/fd",
            options.join(" "),
            root.path_arg()
        );
        let out = sh(As::User, &script);
        let fds: BTreeSet<u32> = expect_success(&out)
            .split_whitespace()
            .map(|fd| fd.parse().unwrap())
            .collect();
        // 3 is the directory ls is listing.
        assert_eq!(fds, BTreeSet::from([0, 1, 2, 3]), "{}", mode(options));
    }
}

#[test]
fn nothing_outside_dir_can_be_written() {
    let root = busybox_rootfs();
    let host = TempDir::new();
    let target = host.write("file", "original\n");
    let target = target.to_str().unwrap();
    let new = host.arg("new");
    // Every path names the host file; each write either fails or lands inside DIR.
    let script = format!(
        "mkdir -p {h}; \
         for p in {t} /..{t} /../../..{t} ../../..{t} /proc/1/root{t} /proc/self/cwd/..{t}; do \
           echo changed > $p; \
         done; echo new > {new}; cat {t}",
        h = host.path().display(),
        t = target,
    );
    let out = run_sh(&[], &root, &script);
    assert_eq!(
        expect_success(&out),
        "changed\n",
        "the writes went nowhere: {}",
        describe(&out)
    );
    assert_eq!(read(target.as_ref()), "original\n");
    assert!(!host.join("new").exists(), "{new} appeared on the host");
    // They landed in the container's own tree instead.
    assert_eq!(
        read(&root.join(target.trim_start_matches('/'))),
        "changed\n"
    );
}

#[test]
fn inside_hook_binds_a_host_directory() {
    let root = busybox_rootfs();
    root.mkdir("mnt");
    let shared = TempDir::new();
    shared.write("data", "from the host\n");
    let hook = format!("mount --bind {} mnt", shared.path().display());
    let out = contain(As::User, &["-i", &hook], &root, &["cat", "/mnt/data"]);
    assert_eq!(expect_success(&out), "from the host\n");
    // The bind lived in the container's mount namespace only.
    assert!(!root.join("mnt/data").exists());
    assert!(
        !read("/proc/self/mountinfo".as_ref()).contains(&root.path_arg()),
        "the container's mounts show on the host"
    );
}

#[test]
fn outside_hook_gets_the_init_pid() {
    let root = busybox_rootfs();
    let files = TempDir::new();
    let pid_file = files.arg("pid");
    let token = unique_token();
    let sleep = format!("9{token}");
    for options in MODES {
        let _ = fs::remove_file(&pid_file);
        let hook = format!("echo $CONTAIN_PID > {pid_file}");
        let opts = [&["-o", &hook], options].concat();
        let running = spawn(contain_command(As::User, &opts, &root, &["sleep", &sleep]));
        let init = init_of(running.pid(), "sleep");
        let named: u32 = read(pid_file.as_ref())
            .trim()
            .parse()
            .expect("a PID in the file");
        assert_eq!(named, init.pid, "{}", mode(options));
        assert_eq!(
            namespace_pids(init.pid).last(),
            Some(&1),
            "{}",
            mode(options)
        );
        kill_init(running, &init, options, &token);
    }
}

#[test]
fn a_failing_inside_hook_aborts() {
    let root = busybox_rootfs();
    let token = unique_token();
    // The hook leaves a process behind in the container; it must go with the container.
    let hook = format!("sleep 8{token} & exit 3");
    for options in MODES {
        let opts = [&["-i", &hook], options].concat();
        let out = contain(As::User, &opts, &root, &["sleep", &format!("9{token}")]);
        let line = expect_refused(&out, 125, mode(options), &token);
        assert!(line.contains("hook"), "{}: {line}", mode(options));
    }
}

#[test]
fn a_failing_outside_hook_aborts() {
    let root = busybox_rootfs();
    let token = unique_token();
    for options in MODES {
        let opts = [&["-o", "exit 3"], options].concat();
        let marker = format!("/tmp/started{token}");
        let out = run_sh(&opts, &root, &format!("touch {marker}; sleep 9{token}"));
        let line = expect_refused(&out, 125, mode(options), &token);
        assert!(line.contains("hook"), "{}: {line}", mode(options));
        assert!(
            !root.join(&marker[1..]).exists(),
            "{}: the command ran",
            mode(options)
        );
    }
}

#[test]
fn exit_status_passes_through() {
    let root = busybox_rootfs();
    for options in MODES {
        let out = run_sh(options, &root, "exit 7");
        expect_status(&out, 7, options);
        assert!(
            out.stderr.is_empty(),
            "{}: {}",
            mode(options),
            describe(&out)
        );
    }
}

#[test]
fn init_killed_from_the_host_gives_128_plus_signal() {
    let root = busybox_rootfs();
    let token = unique_token();
    for options in MODES {
        let running = start_sh(options, &root, &format!("sleep 9{token}; true"));
        let init = init_of(running.pid(), "sh");
        kill_init(running, &init, options, &token);
    }
}

#[test]
fn sigterm_reaches_init() {
    let root = busybox_rootfs();
    let token = unique_token();
    for options in MODES {
        let _ = fs::remove_file(root.join("tmp/ready"));
        let script =
            format!("trap 'echo got TERM; exit 5' TERM; touch /tmp/ready; sleep 9{token} & wait");
        let running = start_sh(options, &root, &script);
        wait_for_file(&root.join("tmp/ready"));
        running.signal(Signal::SIGTERM);
        let out = running.finish();
        expect_status(&out, 5, options);
        assert_eq!(stdout(&out), "got TERM\n", "{}", mode(options));
        expect_nothing_left(&token);
    }
}

#[test]
fn halt_ends_the_container_with_0() {
    let root = busybox_rootfs();
    let token = unique_token();
    for options in MODES {
        let script = format!("halt -f; sleep 9{token}; echo not halted; exit 3");
        let out = run_sh(options, &root, &script);
        expect_status(&out, 0, options);
        assert!(!stdout(&out).contains("not halted"), "{}", mode(options));
        expect_nothing_left(&token);
    }
}

#[test]
fn reboot_restarts_the_container() {
    let token = unique_token();
    for options in MODES {
        let root = busybox_rootfs();
        // First boot: rename the host, leave a marker and reboot; the second boot finds the
        // marker and exits 6. Each boot logs its PID and hostname.
        let script = format!(
            "echo \"$$ $(hostname)\" >> /tmp/boots; \
             if [ -e /tmp/booted ]; then exit 6; fi; \
             touch /tmp/booted; hostname first; reboot -f; sleep 9{token}; exit 3"
        );
        let out = run_sh(options, &root, &script);
        expect_status(&out, 6, options);
        let host = host_hostname();
        assert_eq!(
            read(&root.join("tmp/boots")),
            format!("1 {host}\n1 {host}\n"),
            "{}: two fresh boots",
            mode(options)
        );
        expect_nothing_left(&token);
    }
}

#[test]
fn killing_contain_leaves_no_container_process() {
    let root = busybox_rootfs();
    for options in MODES {
        let token = unique_token();
        let script = format!("sleep 8{token} & sleep 9{token}; true");
        let running = start_sh(options, &root, &script);
        let init = init_of(running.pid(), "sh");
        let mut container = wait_for("the container's two sleeps", || {
            let sleeps: Vec<u32> = processes_marked(&token)
                .into_iter()
                .filter(|p| p.cmdline.first().map(String::as_str) == Some("sleep"))
                .map(|p| p.pid)
                .collect();
            (sleeps.len() == 2).then_some(sleeps)
        });
        container.push(init.pid);
        running.signal(Signal::SIGKILL);
        let out = running.finish();
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{}: {}",
            mode(options),
            describe(&out)
        );
        for pid in container {
            wait_until(
                &format!("{}: container process {pid} to end", mode(options)),
                || !process_alive(pid),
            );
        }
        expect_nothing_left(&token);
    }
}

#[test]
fn console_is_a_terminal_of_the_hosts_size() {
    let root = busybox_rootfs();
    let out = contain_on_terminal_of_size(As::User, 40, 100, &root, "stty size; tty");
    assert_eq!(
        expect_success(&out),
        "40 100\r\n/dev/console\r\nstatus=0\r\nterminal restored\r\n"
    );
}

#[test]
fn end_of_piped_input_reaches_the_container() {
    let root = busybox_rootfs();
    let cases = [
        ("echo hi", "hi\n"),
        // A last line without a newline ends too.
        ("printf hi", "hi"),
        // The reader is already waiting for more when the end comes.
        (
            "{ echo hi; sleep 0.5; echo there; sleep 0.5; }",
            "hi\nthere\n",
        ),
    ];
    for options in MODES {
        for (input, expected) in cases {
            let script = format!(
                "{input} | contain {} {} cat",
                options.join(" "),
                root.path_arg()
            );
            // It takes about a second; a lost end of file must not cost the whole TIMEOUT.
            let out = spawn(sh_command(As::User, &script)).finish_within(Duration::from_secs(20));
            assert_eq!(expect_success(&out), expected, "{}: {input}", mode(options));
        }
    }
}

/// 1 MiB of every byte value in a scrambled order.
fn binary_data() -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    let mut data: Vec<u8> = (0..=255).collect();
    data.extend((0..1 << 20).map(|_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8
    }));
    data.extend(b"\r\n\n\r last line without a newline");
    data
}

#[test]
fn output_through_a_pipe_is_byte_exact() {
    let root = busybox_rootfs();
    let data = binary_data();
    root.write("data", &data);
    for options in MODES {
        let out = contain(As::User, options, &root, &["cat", "/data"]);
        expect_output(&out, &data, options);
    }
}

/// Runs `cat` in a container in each mode with `data` on its stdin and checks that the same
/// bytes come out. A wedged console must not cost the whole [`TIMEOUT`]: 1 MiB takes well
/// under a second.
#[track_caller]
fn expect_cat_passes_input_unchanged(data: &[u8]) {
    let root = busybox_rootfs();
    let files = TempDir::new();
    let input = files.write("input", data);
    for options in MODES {
        let mut cmd = contain_command(As::User, options, &root, &["cat"]);
        cmd.stdin(fs::File::open(&input).unwrap());
        let out = spawn(cmd).finish_within(Duration::from_secs(20));
        expect_output(&out, data, options);
    }
}

#[test]
fn long_piped_lines_reach_the_container_unchanged() {
    // A line longer than a terminal's line buffer (4095 bytes), and a carriage return.
    let mut data = vec![b'x'; 5000];
    data.extend(b"\nline with a\rcarriage return\n");
    expect_cat_passes_input_unchanged(&data);
}

#[test]
fn piped_binary_input_reaches_the_container_unchanged() {
    // Terminal control characters (^C, ^D, ^S, ^U, DEL, ...) are data in a file.
    expect_cat_passes_input_unchanged(&binary_data());
}

#[test]
fn dir_missing() {
    let token = unique_token();
    let missing = format!("/tmp/contain-tests-missing{token}");
    let out = run(As::User, "contain", [missing.as_str(), "true"]);
    let line = expect_refused(&out, 125, &missing, &token);
    assert_eq!(
        line,
        format!("contain: {missing}: No such file or directory")
    );
}

#[test]
fn dir_not_a_directory() {
    let files = TempDir::new();
    let token = unique_token();
    let file = files.write(format!("file{token}"), "");
    let file = file.to_str().unwrap();
    let out = run(As::User, "contain", [file, "true"]);
    let line = expect_refused(&out, 125, file, &token);
    assert_eq!(line, format!("contain: {file}: Not a directory"));
}

#[test]
fn command_missing() {
    let root = busybox_rootfs();
    let token = unique_token();
    for options in MODES {
        let out = contain(As::User, options, &root, &["nope", &token]);
        let line = expect_refused(&out, 127, mode(options), &token);
        assert_eq!(
            line,
            "contain: nope: command not found",
            "{}",
            mode(options)
        );
    }
}

#[test]
fn command_not_executable() {
    let root = busybox_rootfs();
    root.write("bin/noexec", "#!/bin/sh\necho ran\n");
    fs::set_permissions(root.join("bin/noexec"), fs::Permissions::from_mode(0o644)).unwrap();
    let token = unique_token();
    for options in MODES {
        for name in ["noexec", "/bin/noexec"] {
            let out = contain(As::User, options, &root, &[name, &token]);
            let what = format!("{} {name}", mode(options));
            let line = expect_refused(&out, 126, &what, &token);
            assert!(line.contains("noexec"), "{what}: {line}");
        }
    }
}

#[test]
fn bad_map() {
    let root = busybox_rootfs();
    let token = unique_token();
    let out = contain(
        As::User,
        &["-u", "0:1:0"],
        &root,
        &["sleep", &format!("9{token}")],
    );
    expect_refused(&out, 125, "-u 0:1:0", &token);
}

#[test]
fn root_gets_the_run_as_root_defaults() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let script = "echo $$; id -u; touch /tmp/by-root /tmp/given; chown 1000:1000 /tmp/given; \
                  ip -o link | wc -l";
    let out = contain(As::Root, &[], &root, &["sh", "-c", script]);
    // PID 1, root, and a network of its own (only lo).
    assert_eq!(expect_success(&out), "1\n0\n1\n");
    // Container IDs are one block of host IDs no host account has.
    let (uid, gid) = container_root_on_host(As::Root);
    assert_eq!(owner(&root.join("tmp/by-root")), (uid, gid));
    assert_eq!(owner(&root.join("tmp/given")), (uid + 1000, gid + 1000));
}

/// A namespace the kernel refuses is named in the message, with the setting to check. The
/// limits in /proc/sys/user belong to each user namespace, so pseudo's root can lower them for
/// a nested contain without touching the host's.
#[test]
fn a_refused_namespace_is_named_with_the_setting_to_check() {
    let root = busybox_rootfs();
    let token = unique_token();
    for (limit, named) in [
        (
            "max_net_namespaces",
            "creating a network namespace failed: No space left on device \
             (check sysctl user.max_net_namespaces)",
        ),
        (
            "max_user_namespaces",
            "creating a user namespace failed: No space left on device",
        ),
    ] {
        // Inside pseudo only container 0 is certain to be mapped: the nested maps use it alone.
        let script = format!(
            "echo 0 > /proc/sys/user/{limit} && exec contain -c -u 0:0:1 -g 0:0:1 {} sleep 9{token}",
            root.path_arg()
        );
        let out = output(sh_command(
            As::User,
            &format!("exec pseudo -p sh -c '{script}'"),
        ));
        let line = expect_refused(&out, 125, limit, &token);
        assert!(line.contains(named), "{limit}: {line}");
    }
}
