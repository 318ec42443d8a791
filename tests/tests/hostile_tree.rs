//! Integration tests of `contain` on root directories whose proc, sys, dev (or what contain
//! mounts below them) are symbolic links: every link is followed as if DIR were `/`, so the
//! container still gets its /proc and /dev and nothing lands at a target outside DIR; where
//! no sensible place is left, contain refuses with one line naming the path.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use tests::*;

/// What a container checks of its kernel file systems: ps shows init as PID 1 (so /proc is
/// the container's), /dev/null is a working device, /sys and /dev/pts are mounted.
const CHECK: &str = "ps -o pid,args | grep -q '^ *1 ' && echo proc-ok; \
                     test -c /dev/null && echo x > /dev/null && echo null-ok; \
                     test -d /sys/kernel && echo sys-ok; \
                     grep -q ' devpts ' /proc/mounts && echo pts-ok";

const CHECKED: &str = "proc-ok\nnull-ok\nsys-ok\npts-ok\n";

/// Replaces `name` (a directory of the busybox tree) with a symbolic link to `target`.
fn make_link(root: &TempDir, name: &str, target: &str) {
    let path = root.join(name);
    if path.is_dir() {
        fs::remove_dir(&path).unwrap();
    }
    symlink(target, &path).unwrap();
}

/// Asserts that `dir`, a host directory some link named, is still empty.
#[track_caller]
fn expect_empty(dir: &Path) {
    let entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        entries.is_empty(),
        "{} got {entries:?} from the container",
        dir.display()
    );
}

/// `target` as a relative link from DIR/`name` that climbs far above DIR first.
fn climbing(target: &Path) -> String {
    format!("../../../../../../../..{}", target.display())
}

/// Runs the checks in a container of `root` in each mode and asserts they all pass.
#[track_caller]
fn expect_kernel_file_systems(who: As, root: &TempDir, what: &str) {
    for options in MODES {
        let out = contain(who, options, root, &["sh", "-c", CHECK]);
        let printed = expect_success(&out).replace("\r\n", "\n");
        assert_eq!(printed, CHECKED, "{what} ({options:?}): {}", describe(&out));
    }
}

#[test]
fn links_to_absolute_paths_outside_dir_are_followed_inside_it() {
    let root = busybox_rootfs();
    let outside = TempDir::new();
    for name in ["proc", "sys", "dev"] {
        let target = outside.mkdir(name);
        // The same path inside DIR is where the link leads when DIR is `/`.
        root.mkdir(target.strip_prefix("/").unwrap());
        make_link(&root, name, target.to_str().unwrap());
    }
    expect_kernel_file_systems(As::User, &root, "absolute links");
    // With the host's network, /sys is the host's, bound and made read-only through the link.
    let out = contain(
        As::User,
        &["-c", "-n"],
        &root,
        &[
            "sh",
            "-c",
            "test -d /sys/kernel && ! touch /sys/x 2>/dev/null && echo sys-ok",
        ],
    );
    assert_eq!(expect_success(&out), "sys-ok\n", "{}", describe(&out));
    for name in ["proc", "sys", "dev"] {
        expect_empty(&outside.join(name));
    }
}

#[test]
fn relative_links_climbing_out_of_dir_stop_at_its_root() {
    let root = busybox_rootfs();
    let outside = TempDir::new();
    for name in ["proc", "sys", "dev"] {
        let target = outside.mkdir(name);
        root.mkdir(target.strip_prefix("/").unwrap());
        make_link(&root, name, &climbing(&target));
    }
    expect_kernel_file_systems(As::User, &root, "climbing links");
    for name in ["proc", "sys", "dev"] {
        expect_empty(&outside.join(name));
    }
}

#[test]
fn links_below_dev_are_covered_by_the_containers_own_dev() {
    let root = busybox_rootfs();
    let outside = TempDir::new();
    for name in ["pts", "shm", "console", "null", "fd", "ptmx"] {
        let target = outside.mkdir(name);
        make_link(&root, &format!("dev/{name}"), target.to_str().unwrap());
    }
    expect_kernel_file_systems(As::User, &root, "links in dev");
    let out = contain(
        As::User,
        &[],
        &root,
        &[
            "sh",
            "-c",
            "test -c /dev/console && grep -q ' /dev/shm tmpfs ' /proc/mounts && echo ok",
        ],
    );
    assert_eq!(expect_success(&out).trim(), "ok", "{}", describe(&out));
    for name in ["pts", "shm", "console", "null", "fd", "ptmx"] {
        expect_empty(&outside.join(name));
    }
}

#[test]
fn root_gets_the_same_resolution() {
    if !require(As::Root) {
        return;
    }
    let root = busybox_rootfs();
    let outside = TempDir::new();
    for name in ["proc", "dev"] {
        let target = outside.mkdir(name);
        root.mkdir(target.strip_prefix("/").unwrap());
        make_link(&root, name, target.to_str().unwrap());
    }
    expect_kernel_file_systems(As::Root, &root, "absolute links, as root");
    expect_empty(&outside.join("proc"));
    expect_empty(&outside.join("dev"));
}

/// Asserts a one-line refusal (125) that names DIR/`name` and says why.
#[track_caller]
fn expect_refusal(root: &TempDir, name: &str, why: &str) {
    for options in MODES {
        let out = contain(As::User, options, root, &["echo", "started"]);
        let line = expect_error(&out, "contain", 125);
        assert!(out.stdout.is_empty(), "{name}: {}", describe(&out));
        let path = root.arg(name);
        assert!(
            line.contains(&format!("{path}: ")) && line.contains(why),
            "{name} ({options:?}): the refusal should name {path} and say {why:?}: {line}"
        );
    }
}

#[test]
fn a_link_to_a_missing_target_is_refused_naming_it() {
    for (name, sub) in [("proc", "proc"), ("sys", "sys"), ("dev", "dev")] {
        let root = busybox_rootfs();
        let outside = TempDir::new();
        // Missing inside DIR; on the host, the directory above exists and is the user's.
        let target = outside.join(format!("{sub}/missing"));
        outside.mkdir(sub);
        make_link(&root, name, target.to_str().unwrap());
        expect_refusal(&root, name, "a symbolic link to");
        expect_empty(&outside.join(sub));
        let climbing_root = busybox_rootfs();
        make_link(&climbing_root, name, &climbing(&target));
        expect_refusal(&climbing_root, name, "No such file or directory");
        expect_empty(&outside.join(sub));
    }
}

#[test]
fn a_link_to_a_file_is_refused_naming_it() {
    for name in ["proc", "sys", "dev"] {
        let root = busybox_rootfs();
        make_link(&root, name, "/bin/busybox");
        expect_refusal(&root, name, "Not a directory");
    }
}

#[test]
fn a_link_to_the_root_itself_is_refused() {
    for (name, target) in [("proc", "/"), ("dev", ".."), ("sys", "bin/..")] {
        let root = busybox_rootfs();
        make_link(&root, name, target);
        expect_refusal(&root, name, "the container's root itself");
    }
}

#[test]
fn a_missing_mount_point_is_still_created() {
    let root = busybox_rootfs();
    for name in ["proc", "sys", "dev"] {
        fs::remove_dir(root.join(name)).unwrap();
    }
    expect_kernel_file_systems(As::User, &root, "no proc, sys, dev");
    for name in ["proc", "sys", "dev"] {
        assert!(root.join(name).is_dir(), "{name} was not created");
    }
}

/// A directory of the caller's: the test user's, or root's when `who` is root.
fn callers_dir(who: As, parent: &TempDir, name: &str) -> std::path::PathBuf {
    let dir = parent.mkdir(name);
    if who == As::Root {
        std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    }
    dir
}

#[test]
fn links_in_or_as_the_overlay_state_are_refused_and_nothing_is_changed() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs();
        let temp = TempDir::new();
        // What the links lead to: directories (and a file) of the caller's, which a container
        // following them would take as its upper or work, give away or truncate.
        let target = callers_dir(who, &temp, "target");
        let file = target.join("file");
        fs::write(&file, "kept\n").unwrap();
        let mut cases = Vec::new();
        for (name, link_target) in [
            ("upper", target.clone()),
            ("work", target.clone()),
            ("lock", file.clone()),
            ("lock", target.clone()),
        ] {
            let state = callers_dir(who, &temp, &format!("state-{name}-{}", cases.len()));
            symlink(&link_target, state.join(name)).unwrap();
            cases.push((state.clone(), format!("{}/{name}", state.display())));
        }
        // A hard link: the same file under another name, which opening STATE/lock would empty.
        let state = callers_dir(who, &temp, "state-hard-lock");
        fs::hard_link(&file, state.join("lock")).unwrap();
        cases.push((state.clone(), format!("{}/lock", state.display())));
        let link = temp.join("state-link");
        symlink(&target, &link).unwrap();
        cases.push((link.clone(), format!("{}: a symbolic link", link.display())));
        let before = tree_snapshot(&target);
        for (state, named) in cases {
            let state_before = tree_snapshot(&state);
            let out = contain(
                who,
                &["-c", "--overlay", state.to_str().unwrap()],
                &root,
                &["sh", "-c", "echo changed > /x; echo changed > /file"],
            );
            let line = expect_error(&out, "contain", 125);
            assert!(
                line.contains(&named),
                "{who:?}: {line:?} does not name {named}"
            );
            assert!(
                tree_snapshot(&target) == before,
                "{who:?}: --overlay {} changed the link's target",
                state.display()
            );
            // Refused before anything is made in it: no lock file either.
            assert!(
                tree_snapshot(&state) == state_before,
                "{who:?}: --overlay {} changed STATE",
                state.display()
            );
        }
    }
}
