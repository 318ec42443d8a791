//! Bootstrapping a distribution without privilege, end to end: what debootstrap and mmdebstrap
//! need from `pseudo -p` (procfs and device binds in a chroot, signals, no leftovers), the
//! classic demonstration (examples/classic.sh: the host's bash copied with pseudo tar and run
//! with contain), and, when a Debian mirror answers, examples/debian.sh: bootstrap bookworm,
//! boot its sysvinit and its runit with contain, look inside with inject, shut down.

use nix::fcntl::Flock;
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    expect_sigterm_ends_pseudo(running, &seconds);
}

/// A copy of examples/`name` in `dir`, runnable by the test user (the checkout may be closed
/// to it).
fn example(dir: &TempDir, name: &str) -> PathBuf {
    let source = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples")).join(name);
    let text = fs::read(&source).unwrap_or_else(|e| panic!("reading {}: {e}", source.display()));
    dir.write_executable(name, text)
}

/// The rows of the first process table (see [`ps_rows`]) after the line `after`.
#[track_caller]
fn process_table(report: &str, after: &str, columns: usize) -> Vec<(u32, String)> {
    let lines = report.lines().skip_while(|l| !l.starts_with(after)).skip(1);
    ps_rows(lines, columns).unwrap_or_else(|| panic!("no ps table after {after:?}: {report}"))
}

#[test]
fn classic_sh_runs_the_hosts_bash_in_a_container_with_mapped_owners() {
    // The copy keeps /var/mail's group (mail, 8 on Debian): it must be mapped.
    let mail_gid = fs::metadata("/var/mail").unwrap().gid();
    if subordinate_ids(mail_gid.max(1)).is_none() {
        return;
    }
    let u = user();
    let work = TempDir::new();
    let script = example(&work, "classic.sh");
    let root = work.join("root");
    let out = sh(
        As::User,
        &format!("{} {}", script.display(), root.display()),
    );
    let report = expect_success(&out);

    // bash runs as root and PID 1, and sees nothing but itself and ps.
    assert!(report.contains(" is PID 1, uid 0, on "), "{report}");
    let processes = process_table(&report, "bash ", 3);
    let commands: Vec<&str> = processes.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(commands, ["bash", "ps"], "{report}");
    assert_eq!(processes[0].0, 1, "{report}");

    // Inside, the files have the owners they have on the host; on the host, root's are the
    // user's and the mail group is a subordinate gid.
    let inside = |owners: &str, path: &str| {
        report
            .lines()
            .any(|l| l.starts_with(&format!("{owners} ")) && l.ends_with(&format!(" {path}")))
    };
    assert!(inside("0:0", "/usr/bin/bash"), "{report}");
    assert!(inside("0:0", "/etc/passwd"), "{report}");
    assert!(inside(&format!("0:{mail_gid}"), "/var/mail"), "{report}");
    assert_eq!(owner(&root.join("usr/bin/bash")), (u.uid, u.gid));
    assert_eq!(owner(&root.join("etc/passwd")), (u.uid, u.gid));
    let mail_owner = (u.uid, u.host_gid(mail_gid).unwrap());
    assert_eq!(owner(&root.join("var/mail")), mail_owner);
    let host_line = format!("{}:{} ", mail_owner.0, mail_owner.1);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with(&host_line) && l.ends_with("/root/var/mail")),
        "{report}"
    );
    // On a merged-/usr host, /bin is a symlink into usr, and so it is in the copy.
    if let Ok(target) = fs::read_link("/bin") {
        assert_eq!(fs::read_link(root.join("bin")).unwrap(), target);
    }
}

/// The Debian archive of the host's apt sources (as examples/debian.sh finds it), else
/// deb.debian.org.
fn host_debian_mirror() -> String {
    let out = Command::new("timeout")
        .args(["10", "apt-get", "indextargets", "--format", "$(REPO_URI)"])
        .arg("Label: Debian")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .filter(|uri| !uri.is_empty())
        .unwrap_or_else(|| "http://deb.debian.org/debian/".to_string())
}

/// True when `mirror` serves bookworm's release file, fetched by apt itself (so with the
/// host's proxy settings) within 20 s.
fn mirror_answers(mirror: &str) -> bool {
    let dir = TempDir::new();
    let url = format!("{}/dists/bookworm/InRelease", mirror.trim_end_matches('/'));
    let script = format!(
        "timeout 20 /usr/lib/apt/apt-helper download-file '{url}' {}",
        dir.arg("InRelease")
    );
    code(&sh(As::User, &script)) == 0
}

/// What sysvinit's shutdown prints last that always reaches the console: the halt script's own
/// "Will now halt." goes through startpar (concurrent boot), which a loaded machine may not
/// schedule to pass it on before the script's halt ends every process, startpar included.
/// umountfs has ended, and startpar has printed its output, before halt starts.
const SYSVINIT_SHUTDOWN: &str = "Unmounting local filesystems";

/// What a boot of each init shows.
struct Init {
    /// INIT for examples/debian.sh.
    package: &'static str,
    /// PID 1's command line in ps.
    pid_1: &'static str,
    /// The start of the console getty's command line in ps.
    getty: &'static str,
    /// What the console log of each boot (host-network.log, own-network.log) ends with when
    /// the shutdown went through the init's own steps, to the end.
    shutdown: [&'static str; 2],
    /// PACKAGES for examples/debian.sh: what the tests do in the booted tree needs.
    packages: &'static str,
}

const SYSVINIT: Init = Init {
    package: "sysvinit-core",
    pid_1: "init [2]",
    getty: "/sbin/agetty -L --noclear console",
    shutdown: [SYSVINIT_SHUTDOWN; 2],
    packages: "",
};

const RUNIT: Init = Init {
    package: "runit-init",
    pid_1: "runit",
    getty: "/sbin/agetty -L --noclear console",
    shutdown: ["runit: power off"; 2],
    packages: "",
};

/// systemd: the first boot is rebooted, then powered off; the second halted by SIGTERM (which
/// reaches systemd as SIGRTMIN+3), all by systemd-shutdown. With a system bus (dbus, which
/// minbase leaves out), for contain-oci to ask systemd for scopes.
const SYSTEMD: Init = Init {
    package: "systemd",
    pid_1: "/sbin/init",
    getty: "/sbin/agetty -o -p -- \\u --noclear",
    shutdown: ["Powering off.", "Halting system."],
    packages: "dbus",
};

/// The download cache for examples/debian.sh, kept between test runs to spare the downloads:
/// /tmp/contain-tests-debian-cache.UID, a directory of the test user, or for root's runs of
/// the host uid pseudo's root is under root's defaults (each writes files the other's pseudo
/// could not replace). The lock (an flock on a file in it) makes tests that bootstrap take
/// turns, in this run and with other runs.
fn locked_debian_cache(who: As) -> (PathBuf, Flock<fs::File>) {
    let (uid, gid) = container_root_on_host(who);
    let name = match who {
        As::User => user().name.as_str(),
        As::Root => "root's pseudo",
    };
    let dir = PathBuf::from(format!("/tmp/contain-tests-debian-cache.{uid}"));
    match fs::create_dir(&dir) {
        Ok(()) if is_root() => std::os::unix::fs::lchown(&dir, Some(uid), Some(gid)).unwrap(),
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("creating {}: {e}", dir.display()),
    }
    let meta = fs::symlink_metadata(&dir).unwrap();
    assert!(
        meta.is_dir() && meta.uid() == uid,
        "{} is not a directory of {name}",
        dir.display(),
    );
    let lock = lock_file(&dir.join("test.lock"));
    (dir, lock)
}

/// The names of the network interfaces in /proc/net/dev of the test process: the host's.
fn host_interfaces() -> Vec<String> {
    read(Path::new("/proc/net/dev"))
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split(':').next()?.trim().to_string()))
        .collect()
}

/// Runs examples/debian.sh with INIT=`init` as `who` (bootstrap, then debian-boot.sh: two
/// boots, the first with -n ended by halt, the second with a network namespace of its own
/// ended by a signal) and checks what a user would look at: owners, the processes inject
/// shows, the interfaces, contain's status, and the console logs. Returns the work directory
/// holding the tree (`root`), or None when the test was skipped.
fn debian_sh_bootstraps_and_boots(
    who: As,
    init: &Init,
    cgroup: Option<&TestCgroup>,
) -> Option<TempDir> {
    if !require(who) {
        return None;
    }
    // Host owners of root's files, of uid 42 (_apt) and of gid 8 (mail) in the tree.
    let (root_ids, apt_uid, mail_gid) = if who == As::Root {
        let (uid, gid) = container_root_on_host(As::Root);
        ((uid, gid), uid + 42, gid + 8)
    } else {
        let (subuid, subgid) = subordinate_ids(65536)?;
        (
            (user().uid, user().gid),
            subuid.first + 41,
            subgid.first + 7,
        )
    };
    if !Path::new("/usr/bin/mmdebstrap").exists() {
        skip("needs the mmdebstrap package");
        return None;
    }
    let mirror = host_debian_mirror();
    if !mirror_answers(&mirror) {
        skip(&format!("Debian mirror {mirror} not reachable"));
        return None;
    }
    let (cache, _lock) = locked_debian_cache(who);
    let work = TempDir::new();
    let script = example(&work, "debian.sh");
    example(&work, "debian-boot.sh");
    let logs = work.mkdir("logs");
    let root = work.join("root");
    if who == As::Root {
        // Container root of root's defaults is no host account: DIR is made for it to fill,
        // as root would make it (the work directory is the test user's).
        fs::create_dir(&root).unwrap();
        give_tree(&root, container_root_on_host(As::Root));
    }

    let line = format!("{} {}", script.display(), root.display());
    let mut cmd = sh_command(who, &cgroup.map_or(line.clone(), |c| c.wrap(&line)));
    cmd.env("CACHE", &cache)
        .env("MIRROR", &mirror)
        .env("INIT", init.package)
        .env("PACKAGES", init.packages)
        .env("LOGS", &logs);
    // With a filled cache: 20 to 60 s of bootstrap, then a few seconds per boot (runit's
    // SIGINT shutdown waits 14 s).
    let running = spawn(cmd);
    if let Some(cgroup) = cgroup {
        cgroup.enter(running.pid());
    }
    let out = running.finish_within(Duration::from_secs(480));
    let report = expect_success(&out);

    // The bootstrap: root's files are the user's, _apt's (uid 42) the user's subuid + 41, the
    // mail group's (gid 8) the user's subgid + 7; under real root, root's are the first IDs
    // of root's default block and the others follow them.
    assert_eq!(owner(&root.join("etc/passwd")), root_ids);
    assert!(read(&root.join("etc/passwd")).contains("_apt:x:42:"));
    assert_eq!(
        owner(&root.join("var/cache/apt/archives/partial")),
        (apt_uid, root_ids.1)
    );
    assert_eq!(owner(&root.join("var/mail")), (root_ids.0, mail_gid));
    assert!(
        fs::read_dir(cache.join("archives")).unwrap().count() > 50,
        "the download cache was not filled"
    );

    let boots: Vec<&str> = report.split("\n$ contain ").skip(1).collect();
    assert_eq!(boots.len(), 2, "{report}");
    for ((boot, interfaces, log), shutdown_message) in [
        (boots[0], host_interfaces(), "host-network.log"),
        (boots[1], vec!["lo".to_string()], "own-network.log"),
    ]
    .into_iter()
    .zip(init.shutdown)
    {
        // inject shows init as PID 1, and the services it started.
        let ps = boot.find(" ps ax\n").map_or(boot, |at| &boot[at..]);
        let processes = process_table(ps, " ps ax", 5);
        assert!(processes.contains(&(1, init.pid_1.to_string())), "{boot}");
        let runs = |program: &str| processes.iter().any(|(_, c)| c.starts_with(program));
        assert!(runs("/usr/sbin/cron"), "no cron: {boot}");
        assert!(runs(init.getty), "no getty: {boot}");
        let seen = boot
            .lines()
            .skip_while(|l| !l.contains("cat /proc/net/dev"))
            .nth(1)
            .unwrap_or_default();
        let mut seen: Vec<&str> = seen.split_whitespace().collect();
        seen.sort_unstable();
        let mut interfaces: Vec<&str> = interfaces.iter().map(String::as_str).collect();
        interfaces.sort_unstable();
        assert_eq!(seen, interfaces, "{boot}");
        assert!(boot.contains("contain exited with 0"), "{boot}");
        // The shutdown went through the init's own scripts, to the end.
        let console = read(&logs.join(log));
        assert!(
            console.contains(shutdown_message),
            "{log}: {console}\n{boot}"
        );
    }
    assert!(
        !live_processes()
            .iter()
            .any(|p| p.cmdline.iter().any(|a| a.contains(root.to_str().unwrap()))),
        "a process of the container outlived the script"
    );
    Some(work)
}

/// Needs the mmdebstrap package, subordinate IDs and a Debian mirror (else it skips), and
/// about a minute. Then boots the same tree on layered roots (see
/// [`debian_on_layered_roots_keeps_changes_only_in_state`]).
#[test]
fn examples_debian_sh_boots_sysvinit_halts_it_and_stops_it_with_sigpwr() {
    if let Some(work) = debian_sh_bootstraps_and_boots(As::User, &SYSVINIT, None) {
        debian_on_layered_roots_keeps_changes_only_in_state(&work.join("root"));
    }
}

/// The sysvinit case run by real root (its own download cache): the console, and with it the
/// boot and shutdown log, must work as for a user.
#[test]
fn examples_debian_sh_as_root_boots_sysvinit_with_its_console_logged() {
    debian_sh_bootstraps_and_boots(As::Root, &SYSVINIT, None);
}

/// Like the sysvinit test, and about 15 s longer: runit halts on SIGINT after a warning.
#[test]
fn examples_debian_sh_boots_runit_halts_it_and_stops_it_with_sigint() {
    debian_sh_bootstraps_and_boots(As::User, &RUNIT, None);
}

/// systemd booted by real root, from a cgroup made for the test (as a service with
/// Delegate=yes would have): it reaches `running`, reboots, powers off (contain exits 0),
/// halts on SIGTERM with its shutdown on the console, and leaves no cgroup behind. About
/// three minutes, most of it the bootstrap.
#[test]
fn examples_debian_sh_as_root_boots_systemd_in_a_cgroup_of_its_own() {
    if !require(As::Root) {
        return;
    }
    let Some(cgroup) = TestCgroup::new(None) else {
        return;
    };
    if let Some(work) = debian_sh_bootstraps_and_boots(As::Root, &SYSTEMD, Some(&cgroup)) {
        assert_console_shows_boot_and_login(&work);
    }
    cgroup.assert_left_clean();
}

/// Each console log shows systemd's boot and a login prompt on the console.
#[track_caller]
fn assert_console_shows_boot_and_login(work: &TempDir) {
    for log in ["host-network.log", "own-network.log"] {
        let console = read(&work.join("logs").join(log));
        assert!(
            console.contains("Reached target") && console.contains(" login: "),
            "{log}: {console}"
        );
    }
}

/// The same as the test user, from a cgroup delegated to them the way systemd delegates one
/// (`systemd-run --user --scope -p Delegate=yes`); then, on the same tree: without such a
/// cgroup, booting systemd is refused before anything starts, while a shell still runs; and
/// contain killed with SIGKILL leaves no cgroup and no process behind.
#[test]
fn examples_debian_sh_boots_systemd_in_a_delegated_cgroup() {
    if !require(As::Root) {
        return;
    }
    let Some(cgroup) = TestCgroup::new(Some((user().uid, user().gid))) else {
        return;
    };
    let Some(work) = debian_sh_bootstraps_and_boots(As::User, &SYSTEMD, Some(&cgroup)) else {
        return;
    };
    cgroup.assert_left_clean();
    assert_console_shows_boot_and_login(&work);
    let root = work.join("root");
    let root_arg = root.to_str().unwrap();

    // Outside the delegated cgroup: refused with the fix named, nothing started.
    let out = run(As::User, "contain", [root_arg, "/sbin/init"]);
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.contains("needs a cgroup v2 subtree delegated to you")
            && line.contains("systemd-run --user --scope -p Delegate=yes"),
        "{line}"
    );
    assert!(
        !out.stdout.windows(7).any(|w| w == b"systemd"),
        "{}",
        describe(&out)
    );
    let out = run(
        As::User,
        "contain",
        [root_arg, "/bin/sh", "-c", "echo shell"],
    );
    assert_eq!(expect_success(&out), "shell\n");

    // SIGKILL to contain: its watchdog ends the container and removes the cgroups.
    let line = cgroup.wrap(&format!("exec contain {root_arg} /sbin/init"));
    let running = spawn(sh_command(As::User, &line));
    cgroup.enter(running.pid());
    let pid = running.pid();
    wait_until("systemd to be running", || {
        let out = output(inject_command(
            As::User,
            &[],
            pid,
            &["systemctl", "is-system-running"],
        ));
        String::from_utf8_lossy(&out.stdout).trim() == "running"
    });
    assert!(cgroup.path.join("container/init.scope").is_dir());
    // What a user looks at inside, without machinectl.
    let status = output(inject_command(
        As::User,
        &[],
        pid,
        &["systemctl", "status", "--no-pager"],
    ));
    assert!(expect_success(&status).contains("State: running"));
    let journal = output(inject_command(
        As::User,
        &[],
        pid,
        &["journalctl", "-b", "--no-pager"],
    ));
    assert!(expect_success(&journal).contains("Startup finished"));
    contain_oci_gets_its_scope_from_the_containers_systemd(&root, pid, &cgroup);
    running.signal(Signal::SIGKILL);
    let out = running.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(9),
        "{}",
        describe(&out)
    );
    wait_until("the cgroups to be removed", || cgroup.children().is_empty());
    wait_until("the container's processes to end", || {
        !live_processes()
            .iter()
            .any(|p| p.cmdline.iter().any(|a| a.contains(root_arg)))
    });
    cgroup.assert_left_clean();
}

/// What `cmd` prints, run by inject in the container of contain `pid` as its root; it must
/// succeed and say nothing on stderr.
#[track_caller]
fn inside(pid: u32, cmd: &[&str]) -> String {
    let out = output(inject_command(As::User, &[], pid, cmd));
    let said = expect_success(&out);
    assert_eq!(stderr(&out), "", "{cmd:?}: {}", describe(&out));
    said
}

fn strs(words: &[String]) -> Vec<&str> {
    words.iter().map(String::as_str).collect()
}

/// The properties `names` (comma-separated) of `unit` as `systemctl show` gives them in the
/// container of contain `pid`.
fn unit_properties(pid: u32, unit: &str, names: &str) -> HashMap<String, String> {
    inside(pid, &["systemctl", "show", "-p", names, unit])
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// contain-oci --systemd-cgroup against a real systemd (252, booted in `root` by contain `pid`
/// from `cgroup`): create has the container's systemd make the scope system.slice/contain-oci-ID
/// .scope with the process in it before it runs, as systemctl shows it (delegated, active);
/// the process sees the scope as the root of its cgroup namespace; delete --force leaves
/// neither the scope nor its cgroup. contain-oci runs as root of the container's user
/// namespace, on the system bus of its dbus-daemon, started as a service of systemd's (as
/// engines run it): a process inject starts is outside the container's cgroup tree, from
/// where systemd may not move a process into a scope (a move needs write access to the
/// common ancestor's cgroup.procs). A few seconds.
fn contain_oci_gets_its_scope_from_the_containers_systemd(
    root: &Path,
    pid: u32,
    cgroup: &TestCgroup,
) {
    // contain-oci and a bundle of busybox in the tree, owned by its root (the test user).
    let bundle = root.join("srv/contain-oci-test");
    let rootfs = busybox_rootfs();
    let copy = format!(
        "mkdir {bundle} && cp -a {rootfs}/. {bundle}/rootfs && cp {oci} {bin}",
        bundle = shell_quote(bundle.to_str().unwrap()),
        rootfs = shell_quote(&rootfs.path_arg()),
        oci = shell_quote(bin("contain-oci").to_str().unwrap()),
        bin = shell_quote(root.join("usr/local/bin/contain-oci").to_str().unwrap()),
    );
    expect_success(&sh(As::User, &copy));
    let inner_bundle = "/srv/contain-oci-test";
    inside(pid, &["contain-oci", "spec", "--bundle", inner_bundle]);
    let id = format!("t{}", unique_token());
    let unit = format!("contain-oci-{id}.scope");
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&read(&config)).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] =
        serde_json::json!(["sh", "-c", "cat /proc/self/cgroup; exec sleep 3600"]);
    spec["linux"]["cgroupsPath"] = format!("system.slice:contain-oci:{id}").into();
    fs::write(&config, spec.to_string()).unwrap();

    let state_root = "/run/contain-oci";
    let oci = |args: &[&str]| -> Vec<String> {
        ["contain-oci", "--root", state_root]
            .iter()
            .chain(args)
            .map(|a| a.to_string())
            .collect()
    };
    let log = format!("{inner_bundle}/out");
    let said = || fs::read_to_string(bundle.join("out")).unwrap_or_default();
    let mut service = vec![
        "systemd-run".to_string(),
        "--wait".into(),
        "--quiet".into(),
        "--collect".into(),
        format!("--property=StandardOutput=append:{log}"),
        format!("--property=StandardError=append:{log}"),
    ];
    service.extend(oci(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        inner_bundle,
        &id,
    ]));
    let out = output(inject_command(As::User, &[], pid, &strs(&service)));
    assert_eq!(code(&out), 0, "{}\n{}", describe(&out), said());
    let run_oci = |args: &[&str]| inside(pid, &strs(&oci(args)));

    // Created: in the scope before it runs, where the system container's root sees it.
    let state: serde_json::Value = serde_json::from_str(&run_oci(&["state", &id])).unwrap();
    assert_eq!(state["status"], "created", "{state}");
    let process = state["pid"]
        .as_i64()
        .expect("a pid in the state")
        .to_string();
    let scope_path = format!("/system.slice/{unit}");
    let placed = inside(pid, &["cat", &format!("/proc/{process}/cgroup")]);
    assert!(
        placed.lines().any(|l| l == format!("0::{scope_path}")),
        "{placed}"
    );
    let properties = unit_properties(pid, &unit, "ActiveState,ControlGroup,Delegate,Slice");
    let property = |name: &str| properties.get(name).map(String::as_str);
    assert_eq!(property("ActiveState"), Some("active"), "{properties:?}");
    assert_eq!(property("ControlGroup"), Some(scope_path.as_str()));
    assert_eq!(property("Delegate"), Some("yes"));
    assert_eq!(property("Slice"), Some("system.slice"));
    // On the host: in the tree delegated to the container, holding that one process.
    let on_host = cgroup.path.join("container/system.slice").join(&unit);
    assert_eq!(read(&on_host.join("cgroup.procs")).lines().count(), 1);

    // Started: the process sees its scope as the root of its cgroup namespace.
    run_oci(&["start", &id]);
    let seen = wait_for("the container's process to print its cgroups", || {
        let text = said();
        text.lines().any(|l| l.starts_with("0::")).then_some(text)
    });
    assert!(seen.lines().any(|l| l == "0::/"), "{seen}");

    // Deleted while it runs: systemd has stopped the scope and forgotten it, and its cgroup
    // is gone.
    run_oci(&["delete", "--force", &id]);
    wait_until("systemd to forget the container's scope", || {
        unit_properties(pid, &unit, "LoadState")
            .get("LoadState")
            .map(String::as_str)
            == Some("not-found")
    });
    assert!(!on_host.exists(), "{} is left", on_host.display());
    let out = output(inject_command(
        As::User,
        &[],
        pid,
        &strs(&oci(&["state", &id])),
    ));
    assert_ne!(code(&out), 0, "{}", describe(&out));
}

/// Boots `root` with `contain OPTIONS ROOT /sbin/init` in the background, waits for its cron,
/// runs each of `steps` in it with inject (each must succeed), halts it with inject and expects
/// contain to end with 0. Returns what the steps printed.
fn boot_run_and_halt(root: &Path, options: &[&str], steps: &[&[&str]]) -> String {
    let mut args: Vec<&str> = options.to_vec();
    args.extend([root.to_str().unwrap(), "/sbin/init"]);
    let running = spawn(command(As::User, "contain", &args));
    let pid = running.pid();
    wait_until("cron to run in the container", || {
        code(&output(inject_command(
            As::User,
            &[],
            pid,
            &["pgrep", "-x", "cron"],
        ))) == 0
    });
    let mut said = String::new();
    for step in steps {
        said += &expect_success(&output(inject_command(As::User, &[], pid, step)));
    }
    expect_success(&output(inject_command(As::User, &[], pid, &["/sbin/halt"])));
    let out = running.finish();
    assert_eq!(code(&out), 0, "contain {args:?}: {}", describe(&out));
    said
}

/// Boots the Debian tree `root` with `contain --tmp-overlay` and with `contain --overlay
/// STATE`, each time installing a package with apt-get and changing a file: afterwards the tree
/// is as before, and STATE holds the installed package. The package is a local .deb made here,
/// in a --layer under the tree, so that no network is needed. Part of the sysvinit test, on its
/// tree (a bootstrap of its own would take a minute more); a few seconds.
fn debian_on_layered_roots_keeps_changes_only_in_state(root: &Path) {
    if nix::sys::statfs::statfs("/tmp")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
    {
        skip("/tmp is on overlayfs, which cannot hold the upper layer of --overlay STATE");
        return;
    }
    let work = TempDir::new();
    // A package of one file, in a layer of its own.
    let debs = TempDir::new();
    let package = work.mkdir("package");
    work.mkdir("package/DEBIAN");
    work.mkdir("package/usr/share/doc/contain-overlay-test");
    work.write(
        "package/DEBIAN/control",
        "Package: contain-overlay-test\nVersion: 1.0\nArchitecture: all\n\
         Maintainer: contain tests <tests@localhost>\nDescription: installed by the tests\n",
    );
    work.write(
        "package/usr/share/doc/contain-overlay-test/README",
        "installed\n",
    );
    let build = format!(
        "dpkg-deb --root-owner-group --build {} {}",
        package.display(),
        debs.arg("test.deb")
    );
    expect_success(&sh(As::User, &build));

    let state = TempDir::new();
    let before = tree_snapshot(root);
    let install: &[&str] = &["apt-get", "install", "-y", "/test.deb"];
    let change: &[&str] = &["sh", "-c", "echo changed > /etc/motd"];
    let check: &[&str] = &[
        "sh",
        "-c",
        "dpkg-query -W -f '${Status}\\n' contain-overlay-test; cat /etc/motd",
    ];
    let installed = "install ok installed\nchanged\n";
    let debs_arg = debs.path_arg();
    for upper in [
        vec!["--tmp-overlay"],
        vec!["--overlay", state.path().to_str().unwrap()],
    ] {
        let options = [upper.as_slice(), &["--layer", &debs_arg]].concat();
        let said = boot_run_and_halt(root, &options, &[install, change, check]);
        assert!(said.ends_with(installed), "{said}");
        assert!(
            tree_snapshot(root) == before,
            "{options:?} changed the tree"
        );
    }
    let doc = state.join("upper/usr/share/doc/contain-overlay-test/README");
    assert_eq!(read(&doc), "installed\n");
    assert!(read(&state.join("upper/var/lib/dpkg/status")).contains("contain-overlay-test"));
    assert_eq!(read(&state.join("upper/etc/motd")), "changed\n");
}
