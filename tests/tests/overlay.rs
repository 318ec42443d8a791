//! Layered roots (`contain --tmp-overlay`, `--overlay STATE`, `--layer`), as the unprivileged
//! test user, on trees made with pseudo (owners 0 and 1000): what a container changes is seen
//! inside and, with --tmp-overlay, gone after; with --overlay it is kept in STATE for the next
//! run, and STATE takes one container at a time; DIR and the layers never change (contents,
//! owners, modes, times); the host's own root as a throw-away sandbox; the errors.

use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use tests::*;

/// A busybox root made by the test user with pseudo: /home/user owned by 1000:1000, a file of
/// root's in group 1000 with mode 0640, a directory tree to rename, an old mtime.
fn pseudo_tree() -> TempDir {
    let root = busybox_rootfs();
    let script = "set -e
        mkdir -p home/user/docs data/dir/sub
        echo mine > home/user/docs/note
        echo a > data/dir/a
        echo b > data/dir/sub/b
        echo motd > etc/motd
        chown -R 1000:1000 home/user
        chown 0:1000 data/dir/a
        chmod 0640 data/dir/a
        touch -d '2020-01-02 03:04:05' etc/motd";
    let mut cmd = command(As::User, "pseudo", ["sh", "-c", script]);
    cmd.current_dir(root.path());
    expect_success(&output(cmd));
    root
}

/// Asserts that the trees are as `before`, entry by entry.
#[track_caller]
fn expect_unchanged(before: &[(&TempDir, BTreeMap<PathBuf, String>)]) {
    for (tree, snap) in before {
        let now = tree_snapshot(tree.path());
        for (path, was) in snap {
            assert_eq!(now.get(path), Some(was), "{} changed", path.display());
        }
        let added: Vec<&PathBuf> = now.keys().filter(|p| !snap.contains_key(*p)).collect();
        assert!(
            added.is_empty(),
            "{} gained {added:?}",
            tree.path().display()
        );
    }
}

/// Asserts that no mount of the host's namespace lies under any of `paths`.
#[track_caller]
fn expect_nothing_mounted(paths: &[&Path]) {
    let mounts = read(Path::new("/proc/self/mountinfo"));
    for path in paths {
        let path = path.to_str().unwrap();
        assert!(
            !mounts.contains(path),
            "{path} is mounted on the host: {mounts}"
        );
    }
}

/// The output lines of a script run with `contain -c OPTIONS DIR /bin/sh -c SCRIPT`.
#[track_caller]
fn contained_lines(options: &[&str], dir: &TempDir, script: &str) -> Vec<String> {
    let options = [&["-c"], options].concat();
    let out = contain(As::User, &options, dir, &["/bin/sh", "-c", script]);
    expect_success(&out).lines().map(str::to_string).collect()
}

#[test]
fn tmp_overlay_shows_writes_deletes_renames_and_chown_inside_and_keeps_none() {
    let dir = pseudo_tree();
    let before = tree_snapshot(dir.path());
    let script = "set -e
        echo changed > /etc/motd
        rm /etc/group
        mv /data/dir /data/moved
        chown 1000:1000 /etc/passwd
        touch /home/user/docs/new
        mkdir /newdir
        echo motd=$(cat /etc/motd)
        test -e /etc/group || echo group=gone
        echo data=$(ls /data)
        echo moved=$(cat /data/moved/a /data/moved/sub/b)
        stat -c 'owners %u:%g %a %n' /etc/passwd /data/moved/a /home/user/docs/new
        echo x > /dev/null && test -c /dev/null && echo null=ok
        ps -o pid,comm | sed -n 2p";
    let lines = contained_lines(&["--tmp-overlay"], &dir, script);
    assert_eq!(
        lines,
        [
            "motd=changed",
            "group=gone",
            "data=moved",
            "moved=a b",
            "owners 1000:1000 644 /etc/passwd",
            "owners 0:1000 640 /data/moved/a",
            "owners 0:0 644 /home/user/docs/new",
            "null=ok",
            "    1 sh",
        ],
        "{lines:?}"
    );
    expect_unchanged(&[(&dir, before)]);
    expect_nothing_mounted(&[dir.path()]);

    // The next run starts from DIR again.
    let lines = contained_lines(
        &["--tmp-overlay"],
        &dir,
        "cat /etc/motd; ls /data; ls /etc/group",
    );
    assert_eq!(lines, ["motd", "dir", "/etc/group"]);
}

/// False (and says why) when /tmp, where the tests keep STATE, is itself an overlay (a
/// container's root): the kernel takes no upper layer there.
fn state_can_live_in_tmp() -> bool {
    let on_overlay = nix::sys::statfs::statfs("/tmp")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC);
    if on_overlay {
        skip("/tmp is on overlayfs, which cannot hold an upper layer");
    }
    !on_overlay
}

#[test]
fn overlay_state_keeps_changes_for_the_next_run_and_takes_one_container_at_a_time() {
    if !state_can_live_in_tmp() {
        return;
    }
    let u = user();
    let dir = pseudo_tree();
    let state = TempDir::new();
    let state_arg = state.path_arg();
    let before = tree_snapshot(dir.path());
    let options = ["--overlay", &state_arg];

    let first = "set -e
        echo kept > /etc/motd
        rm /etc/group
        mv /data/dir /data/moved
        chown 1000:1000 /etc/passwd
        echo new > /home/user/docs/new";
    contained_lines(&options, &dir, first);
    let second = "cat /etc/motd /home/user/docs/new; ls /data; test -e /etc/group || echo gone
        stat -c '%u:%g' /etc/passwd";
    let lines = contained_lines(&options, &dir, second);
    assert_eq!(lines, ["kept", "new", "moved", "gone", "1000:1000"]);
    expect_unchanged(&[(&dir, before.clone())]);

    // On the host, STATE holds the changes, owned as the tree's files are: root's by the
    // user, 1000's by a subordinate ID; the deletion is a whiteout.
    let upper = state.join("upper");
    assert_eq!(read(&upper.join("etc/motd")), "kept\n");
    assert_eq!(
        owner(&upper.join("etc/passwd")),
        (u.host_uid(1000).unwrap(), u.host_gid(1000).unwrap())
    );
    assert!(fs::symlink_metadata(upper.join("etc/group"))
        .unwrap()
        .file_type()
        .is_char_device());

    // While a container runs on STATE, another is refused, naming it.
    let token = unique_token();
    let script = format!("trap 'exit 0' TERM; touch /ready; sleep 1{token} & wait");
    let running = spawn(contain_command(
        As::User,
        &["-c", "--overlay", &state_arg],
        &dir,
        &["/bin/sh", "-c", &script],
    ));
    wait_until("the first container to start", || {
        upper.join("ready").exists()
    });
    let out = contain(
        As::User,
        &["-c", "--overlay", &state_arg],
        &dir,
        &["/bin/true"],
    );
    let line = expect_error(&out, "contain", 125);
    assert!(
        line.contains(&format!(
            "in use by the container of contain PID {}",
            running.pid()
        )),
        "{line}"
    );
    running.signal(Signal::SIGTERM);
    assert_eq!(code(&running.finish()), 0);
    // Free again once it ended.
    assert_eq!(contained_lines(&options, &dir, "cat /etc/motd"), ["kept"]);
    expect_unchanged(&[(&dir, before)]);
    expect_nothing_mounted(&[dir.path(), state.path()]);

    // STATE holds files of subordinate IDs: pseudo removes it.
    let out = run(As::User, "pseudo", ["rm", "-rf", &state_arg]);
    expect_success(&out);
    assert!(!state.path().exists(), "pseudo rm -rf left {state_arg}");
}

#[test]
fn layers_stack_under_dir_the_first_one_lowest() {
    let base = busybox_rootfs();
    let addon = TempDir::new();
    let dir = TempDir::new();
    for (tree, names) in [
        (&base, ["a", "b", "c"].as_slice()),
        (&addon, ["b", "c"].as_slice()),
        (&dir, ["c"].as_slice()),
    ] {
        tree.mkdir("layer");
        for name in names {
            let from = if tree.path() == base.path() {
                "base"
            } else if tree.path() == addon.path() {
                "addon"
            } else {
                "dir"
            };
            tree.write(format!("layer/{name}"), from);
        }
    }
    let before: Vec<_> = [&base, &addon, &dir]
        .into_iter()
        .map(|t| (t, tree_snapshot(t.path())))
        .collect();
    let show = "for f in a b c; do echo $f=$(cat /layer/$f); done; echo x > /layer/a; rm /layer/b";
    let (base_arg, addon_arg) = (base.path_arg(), addon.path_arg());
    let stacked = ["--tmp-overlay", "--layer", &base_arg, "--layer", &addon_arg];
    assert_eq!(
        contained_lines(&stacked, &dir, show),
        ["a=base", "b=addon", "c=dir"]
    );
    let swapped = ["--tmp-overlay", "--layer", &addon_arg, "--layer", &base_arg];
    assert_eq!(
        contained_lines(&swapped, &dir, show),
        ["a=base", "b=base", "c=dir"]
    );
    expect_unchanged(&before);
}

#[test]
fn inject_hooks_lockdown_and_pasta_see_the_layered_root() {
    let dir = pseudo_tree();
    let before = tree_snapshot(dir.path());
    let token = unique_token();
    let script = format!(
        "trap 'exit 0' TERM; echo from-init > /tmp/init; sleep 1{token} & touch /tmp/ready; wait"
    );
    let options = [
        "-c",
        "--tmp-overlay",
        "--user",
        "1000",
        "--cap-drop",
        "all",
        "-i",
        "echo from-hook > tmp/hook",
    ];
    let running = spawn(contain_command(
        As::User,
        &options,
        &dir,
        &["/bin/sh", "-c", &script],
    ));
    // Not merely contain's first child: the child that sets the container up comes first.
    let init = wait_for("contain's init", || {
        children_of(running.pid())
            .into_iter()
            .find(|c| c.cmdline.first().is_some_and(|c| c == "/bin/sh"))
            .map(|p| p.pid)
    });
    wait_until("the container to be ready", || {
        let probe = inject_command(As::User, &[], init, &["test", "-e", "/tmp/ready"]);
        code(&output(probe)) == 0
    });
    let out = output(inject_command(
        As::User,
        &[],
        init,
        &["cat", "/tmp/init", "/tmp/hook", "/proc/1/status"],
    ));
    let text = expect_success(&out);
    assert!(text.starts_with("from-init\nfrom-hook\n"), "{text}");
    // Init runs locked down on the layered root, and what inject starts holds no more.
    let init_status = ProcStatus::parse(&text);
    init_status.expect_ids(1000);
    assert_eq!(init_status.mask("CapEff"), 0);
    let out = output(inject_command(
        As::User,
        &[],
        init,
        &["cat", "/proc/self/status"],
    ));
    assert_eq!(ProcStatus::parse(&expect_success(&out)).mask("CapEff"), 0);
    running.signal(Signal::SIGTERM);
    assert_eq!(code(&running.finish()), 0);
    expect_unchanged(&[(&dir, before.clone())]);

    let out = contain(
        As::User,
        &["-c", "--tmp-overlay", "--net", "pasta"],
        &dir,
        &[
            "/bin/sh",
            "-c",
            "echo hi > /tmp/x; cat /tmp/x /proc/net/dev",
        ],
    );
    let text = expect_success(&out);
    let interfaces = text.lines().skip(3).count();
    assert!(text.starts_with("hi\n") && interfaces >= 2, "{text}");
    expect_unchanged(&[(&dir, before)]);
}

/// A file of the test user in its home, removed when dropped.
struct HomeFile(PathBuf);

impl Drop for HomeFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn the_hosts_root_is_a_sandbox_running_host_bash_that_changes_no_host_file() {
    let u = user();
    let token = unique_token();
    let file = HomeFile(u.home.join(format!("contain-overlay-test.{token}")));
    fs::write(&file.0, "host\n").unwrap();
    if is_root() {
        std::os::unix::fs::lchown(&file.0, Some(u.uid), Some(u.gid)).unwrap();
    }
    let meta = fs::metadata(&file.0).unwrap();
    let host_tmp = TempDir::new();
    let created = PathBuf::from(format!("/usr/contain-overlay-test.{token}"));
    let script = format!(
        "echo pid=$$ uid=$(id -u)
        echo changed > {f}; echo file=$(cat {f})
        rm {f} && test ! -e {f} && echo removed
        touch {new} && echo created
        echo junk >> /etc/passwd 2>/dev/null || echo passwd=refused
        test -e {tmp} || echo tmp=fresh
        ps -o pid,comm | sed -n 2p",
        f = file.0.display(),
        new = created.display(),
        tmp = host_tmp.path().display()
    );
    let out = command(
        As::User,
        "contain",
        ["-c", "--tmp-overlay", "/", "/bin/bash", "-c", &script],
    );
    let lines: Vec<String> = expect_success(&output(out))
        .lines()
        .map(str::to_string)
        .collect();
    let mut expected = vec![
        "pid=1 uid=0",
        "file=changed",
        "removed",
        "created",
        "passwd=refused",
        "tmp=fresh",
        "      1 bash",
    ];
    if is_root() && u.uid == 0 {
        // Root's files are root's own inside: /etc/passwd would be changed in the copy.
        expected.retain(|l| *l != "passwd=refused");
    }
    assert_eq!(lines, expected);
    assert_eq!(read(&file.0), "host\n");
    let now = fs::metadata(&file.0).unwrap();
    assert_eq!(
        (now.mtime(), now.mtime_nsec(), now.ino()),
        (meta.mtime(), meta.mtime_nsec(), meta.ino())
    );
    assert!(
        !created.exists(),
        "{} appeared on the host",
        created.display()
    );
}

#[test]
fn bad_layers_are_refused_before_anything_starts() {
    let dir = pseudo_tree();
    let other = TempDir::new();
    let state = TempDir::new();
    let file = other.write("file", "not a directory");
    let (dir_arg, state_arg, file_arg) = (dir.path_arg(), state.path_arg(), path_arg(&file));
    let missing = other.arg("missing");
    let inside = dir.arg("etc");
    let parent = dir.path().parent().unwrap().to_str().unwrap().to_string();
    let before = [
        (&dir, tree_snapshot(dir.path())),
        (&state, tree_snapshot(state.path())),
    ];
    let token = unique_token();
    let seconds = format!("1{token}");
    // (options, DIR, what the one line must name)
    let cases: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (
            vec!["--tmp-overlay"],
            &missing,
            vec![&missing, "No such file"],
        ),
        (
            vec!["--tmp-overlay"],
            &file_arg,
            vec![&file_arg, "Not a directory"],
        ),
        (
            vec!["--tmp-overlay", "--layer", &missing],
            &dir_arg,
            vec!["--layer", &missing, "No such file"],
        ),
        (
            vec!["--tmp-overlay", "--layer", &file_arg],
            &dir_arg,
            vec!["--layer", &file_arg, "Not a directory"],
        ),
        (
            vec!["--overlay", &missing],
            &dir_arg,
            vec!["--overlay", &missing, "No such file"],
        ),
        (
            vec!["--overlay", &file_arg],
            &dir_arg,
            vec!["--overlay", &file_arg, "Not a directory"],
        ),
        (
            vec!["--overlay", &inside],
            &dir_arg,
            vec!["--overlay", &inside, "inside DIR"],
        ),
        (
            vec!["--overlay", &parent],
            &dir_arg,
            vec!["--overlay", &parent, "DIR", "is inside it"],
        ),
        (
            vec!["--tmp-overlay", "--layer", &dir_arg],
            &dir_arg,
            vec!["--layer", "the same directory as DIR"],
        ),
        (
            vec!["--tmp-overlay", "--layer", &inside],
            &dir_arg,
            vec!["--layer", &inside, "inside DIR"],
        ),
        (
            vec![
                "--tmp-overlay",
                "--layer",
                &state_arg,
                "--layer",
                &state_arg,
            ],
            &dir_arg,
            vec!["the same directory"],
        ),
        (
            vec!["--tmp-overlay", "--layer", "/dev"],
            &dir_arg,
            vec!["--layer /dev", "mounted below it"],
        ),
        (
            vec!["--overlay", &state_arg],
            "/",
            vec!["--overlay", "inside DIR /", "--tmp-overlay alone"],
        ),
        (
            vec!["--layer", &state_arg],
            &dir_arg,
            vec!["--tmp-overlay", "--overlay"],
        ),
        (
            vec!["--tmp-overlay", "--overlay", &state_arg],
            &dir_arg,
            vec!["--tmp-overlay", "cannot be used with"],
        ),
        // The kernel's own refusal: procfs cannot be a layer.
        (
            vec!["--tmp-overlay", "--layer", "/proc"],
            &dir_arg,
            vec!["the kernel refused it", "Linux 5.11"],
        ),
    ];
    for (options, root, named) in cases {
        let mut args: Vec<&str> = [&["-c"], options.as_slice(), &[root]].concat();
        args.extend(["/bin/sleep", &seconds]);
        let out = run(As::User, "contain", &args);
        let line = expect_error(&out, "contain", 125);
        for name in named {
            assert!(
                line.contains(name),
                "{args:?}: {line:?} does not name {name:?}"
            );
        }
        assert!(processes_running(&["/bin/sleep", &seconds]).is_empty());
    }
    expect_unchanged(&before);
    expect_nothing_mounted(&[dir.path(), state.path()]);
}

fn path_arg(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

#[test]
fn a_reboot_inside_starts_afresh_with_tmp_overlay_and_keeps_state_with_overlay() {
    if !state_can_live_in_tmp() {
        return;
    }
    let dir = pseudo_tree();
    let state = TempDir::new();
    let before = tree_snapshot(dir.path());
    // The -i hook runs at every boot, with the host's files still in view: it counts the boots
    // in a host file and tells init which one this is.
    let script = "if [ $(cat /tmp/boot) = 1 ]; then touch /marker; reboot -f; sleep 10; fi
        test -e /marker && echo kept || echo fresh";
    for (upper, expected) in [
        (vec!["--tmp-overlay"], "fresh"),
        (vec!["--overlay", state.path().to_str().unwrap()], "kept"),
    ] {
        let host = TempDir::new();
        let hook = format!(
            "echo boot >> {0}; wc -l < {0} | tr -d ' ' > tmp/boot",
            host.arg("boots")
        );
        let options = [upper.as_slice(), &["-i", &hook]].concat();
        let lines = contained_lines(&options, &dir, script);
        assert_eq!(lines, [expected], "{options:?}");
        assert_eq!(read(&host.join("boots")), "boot\nboot\n");
    }
    expect_unchanged(&[(&dir, before)]);
}

#[test]
fn the_layered_root_has_the_owner_and_mode_of_dir() {
    if !state_can_live_in_tmp() {
        return;
    }
    let dir = pseudo_tree();
    let state = TempDir::new();
    let chown = format!("chown 1000:1000 {0} && chmod 0751 {0}", dir.path_arg());
    expect_success(&run(As::User, "pseudo", ["sh", "-c", &chown]));
    let plain = contained_lines(&[], &dir, "stat -c '%a %u:%g' /");
    assert_eq!(plain, ["751 1000:1000"]);
    for upper in [
        vec!["--tmp-overlay"],
        vec!["--overlay", state.path().to_str().unwrap()],
    ] {
        assert_eq!(
            contained_lines(&upper, &dir, "stat -c '%a %u:%g' /"),
            plain,
            "{upper:?}"
        );
    }
}
