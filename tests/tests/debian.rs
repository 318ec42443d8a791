//! Bootstrapping a distribution without privilege: what debootstrap and mmdebstrap need from
//! `pseudo -p` (procfs and device binds in a chroot, signals, no leftovers), and, when asked
//! for with `cargo test -- --ignored`, a whole Debian bootstrap with examples/debian.sh.

use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;
use tests::*;

#[test]
fn the_command_runs_as_pid_2_and_sees_only_its_own_processes() {
    let out = run(As::User, "pseudo", ["-p", "sh", "-c", "echo $$; ls /proc"]);
    let text = expect_success(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("2"));
    let pids: Vec<u32> = lines.filter_map(|l| l.parse().ok()).collect();
    // PID 1 (pseudo's init), the shell and ls: nothing of the host's.
    assert!(pids.contains(&1) && pids.contains(&2), "{pids:?}");
    assert!(pids.iter().all(|&pid| pid < 10), "{pids:?}");
}

#[test]
fn procfs_can_be_mounted_in_a_chroot_only_with_a_pid_namespace() {
    let dir = TempDir::new();
    let proc = dir.mkdir("chroot/proc");
    let script = format!(
        "mount -t proc proc {0} && cat {0}/1/cmdline | tr '\\0' ' '",
        proc.display()
    );
    let out = run(As::User, "pseudo", ["-p", "sh", "-c", &script]);
    let init = expect_success(&out);
    assert!(
        init.starts_with(&format!("{} -p ", bin("pseudo").display())),
        "{init:?}"
    );
    assert!(
        fs::read_dir(&proc).unwrap().next().is_none(),
        "the procfs mount was visible on the host"
    );

    // A mount namespace alone is not enough: the kernel wants a PID namespace of our own.
    let out = run(As::User, "pseudo", ["-m", "sh", "-c", &script]);
    assert_ne!(code(&out), 0, "{}", describe(&out));
}

#[test]
fn host_devices_bound_into_a_chroot_work_and_leave_an_empty_file() {
    let dir = TempDir::new();
    let dev = dir.mkdir("chroot/dev");
    let null = dev.join("null");
    let script = format!(
        ": > {0} && mount --bind /dev/null {0} && test -c {0} && echo junk > {0} && wc -c < {0}",
        null.display()
    );
    let out = run(As::User, "pseudo", ["-p", "sh", "-c", &script]);
    assert_eq!(expect_success(&out).trim(), "0");
    let meta = fs::metadata(&null).unwrap();
    assert!(!meta.file_type().is_char_device());
    assert_eq!(
        meta.len(),
        0,
        "writes reached the file under the bind mount"
    );
}

#[test]
fn exit_codes_pass_through_the_init() {
    let out = run(As::User, "pseudo", ["-p", "sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7, "{}", describe(&out));
    let out = run(As::User, "pseudo", ["-p", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(code(&out), 137, "{}", describe(&out));
    let out = run(As::User, "pseudo", ["-p", "no-such-command-here"]);
    let line = expect_error(&out, "pseudo", 127);
    assert!(line.contains("no-such-command-here"), "{line}");
}

#[test]
fn orphans_are_reaped_while_the_command_runs() {
    // The subshell's child is orphaned at once and ends soon after: PID 1 must reap it.
    let script = "(sleep 0.1 &); sleep 1; grep -l '^State:.*Z' /proc/[0-9]*/status; echo done";
    let out = run(As::User, "pseudo", ["-p", "sh", "-c", script]);
    assert_eq!(expect_success(&out), "done\n");
}

#[test]
fn sigterm_to_pseudo_ends_the_command_and_everything_it_started() {
    let dir = TempDir::new();
    let seconds = format!("1{}", unique_token());
    // A shell script without a trap, as debootstrap is: as PID 1 it would ignore SIGTERM.
    let script = format!("sleep {seconds} & touch {}; wait", dir.arg("started"));
    let running = spawn(command(As::User, "pseudo", ["-p", "sh", "-c", &script]));
    wait_until("the command to start", || dir.join("started").exists());
    let sleeping = || {
        test_user_processes()
            .into_iter()
            .any(|p| p.cmdline == ["sleep", seconds.as_str()])
    };
    wait_until("sleep to run", sleeping);
    running.signal(Signal::SIGTERM);
    let out = running.finish();
    assert_eq!(code(&out), 143, "{}", describe(&out));
    assert!(!sleeping(), "sleep {seconds} still runs after pseudo ended");
}

/// Needs network access to a Debian mirror, the mmdebstrap package and about a minute.
#[test]
#[ignore]
fn examples_debian_sh_bootstraps_bookworm_with_mapped_owners() {
    let Some((subuid, subgid)) = subordinate_ids(65536) else {
        return;
    };
    if !Path::new("/usr/bin/mmdebstrap").exists() {
        skip("needs the mmdebstrap package");
        return;
    }
    let work = TempDir::new();
    // The checkout may be closed to the test user: run a copy.
    let script = work.write(
        "debian.sh",
        fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/debian.sh"
        ))
        .unwrap(),
    );
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let cache = work.mkdir("cache");
    let root = work.join("root");

    let mut cmd = sh_command(
        As::User,
        &format!("{} {}", script.display(), root.display()),
    );
    cmd.env("CACHE", &cache);
    let out = spawn(cmd).finish_within(Duration::from_secs(600));
    let report = expect_success(&out);

    let u = user();
    assert_eq!(owner(&root.join("etc/passwd")), (u.uid, u.gid));
    assert!(root.join("sbin/init").exists(), "no init: {report}");
    assert!(root.join("usr/bin/ps").exists(), "no procps: {report}");
    assert!(read(&root.join("etc/passwd")).contains("_apt:x:42:"));
    // _apt (uid 42) owns apt's download directory; its group is root's.
    assert_eq!(
        owner(&root.join("var/cache/apt/archives/partial")),
        (subuid.first + 41, u.gid)
    );
    // The mail group (gid 8) owns /var/mail.
    assert_eq!(owner(&root.join("var/mail")), (u.uid, subgid.first + 7));
    assert!(
        fs::read_dir(cache.join("archives")).unwrap().count() > 50,
        "the download cache was not filled"
    );
    assert!(
        report.contains(&format!("({}):", subuid.first + 41)),
        "{report}"
    );
}
