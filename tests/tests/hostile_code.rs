//! What the code of a tree may do as the container's root, and what it must not get from it:
//! files owned by host users or groups (root's default maps give the container IDs no host
//! account has), capabilities back through a set-user-ID program under `--user` (the bounding
//! set holds only `--cap-add`'s), and the host's memory through the tmpfs mounts contain makes
//! (each has a size of its own).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use tests::*;

/// Where root's default block of host IDs is looked for: systemd's table of UID ranges leaves
/// 0x70000000-0x7FFDFFFF unused, above its containers' ranges and below its foreign range.
const ROOT_BLOCKS: std::ops::Range<u32> = 0x7000_0000..0x7FFE_0000;

/// The group `shadow` of Debian, which may read /etc/shadow.
const SHADOW_GID: u32 = 42;

/// The numbers in field 3 of each line of a passwd or group file.
fn ids_in(file: &str) -> HashSet<u32> {
    read(Path::new(file))
        .lines()
        .filter_map(|line| line.split(':').nth(2)?.parse().ok())
        .collect()
}

/// `(first, count)` of every range of a subordinate ID file whose owner is not `except`.
fn ranges_in(file: &str, except: &str) -> Vec<(u64, u64)> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim().split(':');
            let who = fields.next()?;
            let first: u64 = fields.next()?.parse().ok()?;
            let count: u64 = fields.next()?.parse().ok()?;
            (who != except).then_some((first, count))
        })
        .collect()
}

/// True if root has a range of its own in `file`.
fn root_has_ranges(file: &str) -> bool {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .any(|line| line.starts_with("root:") || line.starts_with("0:"))
}

/// Asserts that host uid `uid` and gid `gid`, which a container of `who` gave a file, belong
/// to no account of /etc/passwd and no group of /etc/group, and, under root, to no user's
/// subordinate range: that no host user or group can use the file's set-ID bits.
#[track_caller]
fn expect_no_host_account(who: As, (uid, gid): (u32, u32), what: &str) {
    assert!(
        !ids_in("/etc/passwd").contains(&uid),
        "{what}: host uid {uid} is an account of /etc/passwd"
    );
    assert!(
        !ids_in("/etc/group").contains(&gid),
        "{what}: host gid {gid} is a group of /etc/group"
    );
    if who == As::Root {
        for (file, id) in [("/etc/subuid", uid), ("/etc/subgid", gid)] {
            for (first, count) in ranges_in(file, "root") {
                assert!(
                    !(first..first + count).contains(&(id as u64)),
                    "{what}: host ID {id} is in the range {first}:{count} of {file}"
                );
            }
        }
    }
}

/// The host owner container root of `who` gives a file of container `uid`:`gid`: under root's
/// defaults, the same offset in one block of 65536 IDs, for users and groups alike.
#[track_caller]
fn expect_root_block((host_uid, host_gid): (u32, u32), (uid, gid): (u32, u32)) {
    if root_has_ranges("/etc/subuid") || root_has_ranges("/etc/subgid") {
        skip("root has ranges of its own in /etc/subuid or /etc/subgid: no fixed block");
        return;
    }
    let base = host_uid - uid;
    assert_eq!(host_gid - gid, base, "users and groups share one block");
    assert_eq!(base % 65536, 0, "the block starts on a multiple of 65536");
    assert!(
        ROOT_BLOCKS.contains(&base),
        "block {base:#x} not in {ROOT_BLOCKS:x?}"
    );
    assert_eq!(container_root_on_host(As::Root), (base, base));
}

/// The test's exploit: container root copies busybox, gives it to a host user's uid and the
/// group shadow, and makes it set-user-ID and set-group-ID.
fn make_setid_file(path: &str) -> String {
    format!(
        "cp /bin/busybox {path} && chown {}:{SHADOW_GID} {path} && chmod 6755 {path} && \
         stat -c '%u:%g %a' {path}",
        user().uid
    )
}

#[test]
fn container_root_gives_no_file_a_host_users_or_groups_id() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        if who == As::User && subordinate_ids(65536).is_none() {
            continue;
        }
        let root = busybox_rootfs_of(who);
        let out = contain(who, &["-c"], &root, &["sh", "-c", &make_setid_file("/x")]);
        // Inside, the file is what the tree asked for.
        assert_eq!(
            expect_success(&out),
            format!("{}:{SHADOW_GID} 6755\n", user().uid),
            "{who:?}"
        );
        let x = root.join("x");
        let meta = fs::metadata(&x).unwrap();
        assert_eq!(
            meta.mode() & 0o6000,
            0o6000,
            "{who:?}: the set-ID bits are kept"
        );
        let host = owner(&x);
        expect_no_host_account(who, host, &format!("contain as {who:?}"));
        if who == As::Root {
            expect_root_block(host, (user().uid, SHADOW_GID));
        }
    }
}

#[test]
fn roots_pseudo_gives_no_file_a_host_users_or_groups_id() {
    if !require(As::Root) {
        return;
    }
    let dir = TempDir::new();
    // Container root is no host account: it may write here as anybody may.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let x = dir.arg("x");
    let out = run(As::Root, "pseudo", ["sh", "-c", &make_setid_file(&x)]);
    assert_eq!(
        expect_success(&out),
        format!("{}:{SHADOW_GID} 6755\n", user().uid)
    );
    let host = owner(&dir.join("x"));
    expect_no_host_account(As::Root, host, "pseudo as root");
    expect_root_block(host, (user().uid, SHADOW_GID));
}

/// A tree root's pseudo unpacks (as a bootstrap would) boots with contain's defaults: its
/// root's files are root's inside, and its 0700 directories container root's to use.
#[test]
fn a_tree_roots_pseudo_made_boots_with_roots_defaults() {
    if !require(As::Root) {
        return;
    }
    let source = busybox_rootfs();
    let work = TempDir::new();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let tree = work.join("tree");
    let unpack = format!(
        "tar -C {} --owner=0 --group=0 --numeric-owner -c . | pseudo sh -c 'mkdir {1} && tar -x -C {1}'",
        source.path_arg(),
        tree.display()
    );
    expect_success(&sh(As::Root, &unpack));
    let base = container_root_on_host(As::Root);
    assert_eq!(owner(&tree.join("bin/busybox")), base);
    let out = run(
        As::Root,
        "contain",
        [
            "-c",
            tree.to_str().unwrap(),
            "sh",
            "-c",
            "stat -c '%u:%g %a' /bin/busybox /root && touch /root/f && echo wrote",
        ],
    );
    assert_eq!(expect_success(&out), "0:0 755\n0:0 700\nwrote\n");
}

/// Explicit maps are root's to choose, the old default included.
#[test]
fn roots_explicit_maps_are_written_as_given() {
    if !require(As::Root) {
        return;
    }
    let dir = TempDir::new();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let f = dir.arg("f");
    let uid = user().uid;
    let out = run(
        As::Root,
        "pseudo",
        [
            "-u",
            &format!("0:4294967294:1,{uid}:{uid}:1"),
            "-g",
            &format!("0:4294967294:1,{SHADOW_GID}:{SHADOW_GID}:1"),
            "sh",
            "-c",
            &format!("touch {f} && chown {uid}:{SHADOW_GID} {f}"),
        ],
    );
    expect_success(&out);
    assert_eq!(owner(&dir.join("f")), (uid, SHADOW_GID));
}

/// Nested under root's defaults, the inner namespace's defaults are the outer one's IDs as
/// themselves: container root of the inner pseudo is the outer container root.
#[test]
fn nested_under_root_the_defaults_come_from_the_namespace() {
    if !require(As::Root) {
        return;
    }
    let dir = TempDir::new();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let script = format!(
        "pseudo sh -c 'cat /proc/self/uid_map; touch {0} && chown 5:5 {0}'",
        dir.arg("n")
    );
    let out = run(As::Root, "pseudo", ["sh", "-c", &script]);
    let lines: Vec<String> = expect_success(&out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0 0 1", "1 1 65535"]);
    let (uid, gid) = container_root_on_host(As::Root);
    assert_eq!(owner(&dir.join("n")), (uid + 5, gid + 5));
}

/// The maps root's containers had by default before: container 0 was host 4294967294, and
/// every other ID itself.
const OLD_ROOT_MAP: &str = "0:4294967294:1,1:1:4294967293";

/// A tree made under the old default moves onto the new one as the root guide says: read with
/// the old maps given explicitly, unpacked by pseudo with the new ones. Owners, set-ID bits,
/// file capabilities and hard links come along.
#[test]
fn a_tree_of_roots_old_default_moves_to_the_new_one() {
    if !require(As::Root) {
        return;
    }
    let work = TempDir::new();
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    let (old, new) = (work.join("old"), work.join("new"));
    let make = format!(
        "mkdir {0} && cp /bin/busybox {0}/x && chown 1000:42 {0}/x && chmod 6755 {0}/x && \
         ln {0}/x {0}/link && mkdir {0}/d && chown 7:8 {0}/d && cp /bin/busybox {0}/caps && \
         setcap cap_net_raw+ep {0}/caps",
        old.display()
    );
    let old_maps = ["-u", OLD_ROOT_MAP, "-g", OLD_ROOT_MAP];
    let mut args = old_maps.to_vec();
    args.extend(["sh", "-c", &make]);
    let out = run(As::Root, "pseudo", args);
    if stderr(&out).contains("setcap: not found") {
        skip("needs setcap (libcap2-bin)");
        return;
    }
    expect_success(&out);
    assert_eq!(owner(&old.join("x")), (1000, 42), "the old default");

    let xattrs = "--numeric-owner --xattrs --xattrs-include='*'";
    let moved = format!(
        "pseudo -u {OLD_ROOT_MAP} -g {OLD_ROOT_MAP} tar -C {old} {xattrs} -cpf - . | \
         pseudo sh -c \"mkdir {new} && tar -C {new} {xattrs} -xpf -\"",
        old = old.display(),
        new = new.display(),
    );
    expect_success(&sh(As::Root, &moved));
    let (uid, gid) = container_root_on_host(As::Root);
    assert_eq!(owner(&new.join("x")), (uid + 1000, gid + 42));
    assert_eq!(owner(&new.join("d")), (uid + 7, gid + 8));
    assert_eq!(owner(&new.join("caps")), (uid, gid));
    let x = fs::metadata(new.join("x")).unwrap();
    assert_eq!((x.mode() & 0o7777, x.nlink()), (0o6755, 2));
    // As the new default's container root sees it.
    let inside = format!(
        "cd {} && stat -c '%u:%g %a %h' x d && getcap caps",
        new.display()
    );
    let out = run(As::Root, "pseudo", ["sh", "-c", &inside]);
    assert_eq!(
        expect_success(&out),
        "1000:42 6755 2\n7:8 755 2\ncaps cap_net_raw=ep\n"
    );
}

// ---- --user and set-user-ID programs -------------------------------------------------------

/// A static program that prints the Uid and Cap lines of its own /proc/self/status: made
/// set-user-ID root, it shows what exec of such a program grants.
const SHOW_CAPS: &str = r#"
#include <stdio.h>
#include <string.h>
int main(void) {
    char line[256];
    FILE *status = fopen("/proc/self/status", "r");
    if (!status) return 1;
    while (fgets(line, sizeof line, status))
        if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Cap", 3)) fputs(line, stdout);
    return 0;
}
"#;

/// Builds [`SHOW_CAPS`] into ROOT/sbin/show-caps, set-user-ID container root's (of `who`'s
/// default maps); false (with `skipped: ...`) when there is no C compiler.
fn install_setuid_show_caps(root: &TempDir, who: As) -> bool {
    let source = root.write("show-caps.c", SHOW_CAPS);
    let program = root.join("sbin/show-caps");
    let built = Command::new("gcc")
        .args(["-static", "-O", "-o"])
        .arg(&program)
        .arg(&source)
        .output();
    match built {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("gcc failed: {}", describe(&out)),
        Err(e) => {
            skip(&format!(
                "needs gcc and libc6-dev to build a static program: {e}"
            ));
            return false;
        }
    }
    fs::remove_file(&source).unwrap();
    if is_root() {
        let (uid, gid) = container_root_on_host(who);
        std::os::unix::fs::chown(&program, Some(uid), Some(gid)).unwrap();
    }
    fs::set_permissions(&program, fs::Permissions::from_mode(0o4755)).unwrap();
    true
}

const NET_BIND_SERVICE: u64 = 1 << 10;

#[test]
fn a_setuid_root_program_gives_a_user_no_capability_but_the_added_ones() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        let nosuid = nix::sys::statvfs::statvfs(root.path())
            .is_ok_and(|fs| fs.flags().contains(nix::sys::statvfs::FsFlags::ST_NOSUID));
        if nosuid {
            skip("/tmp is mounted nosuid: no set-user-ID program runs there");
            return;
        }
        if !install_setuid_show_caps(&root, who) {
            return;
        }
        for (options, expected) in [
            (&["--user", "1000"][..], 0),
            (
                &["--user", "1000", "--cap-add", "net_bind_service"][..],
                NET_BIND_SERVICE,
            ),
            (&USER_1000_WITH_NET_BIND_SERVICE[..], NET_BIND_SERVICE),
        ] {
            let out = contain(who, options, &root, &["/sbin/show-caps"]);
            let text = expect_success(&out);
            let status = ProcStatus::parse(&text);
            // Real uid 1000, effective uid 0: the program did run set-user-ID root.
            let uids: Vec<&str> = status.field("Uid").split_whitespace().collect();
            assert_eq!(uids[..2], ["1000", "0"], "{who:?} {options:?}: {text}");
            assert_eq!(
                (status.mask("CapBnd"), status.mask("CapEff")),
                (expected, expected),
                "{who:?} {options:?}: {text}"
            );
        }
        // Root inside (no --user) keeps its whole set, the program's too.
        let out = contain(
            who,
            &["--cap-drop", "sys_admin"],
            &root,
            &["/sbin/show-caps"],
        );
        let status = ProcStatus::parse(&expect_success(&out));
        assert_ne!(status.mask("CapBnd") & !(1 << 21), 0, "{who:?}");
        assert_eq!(status.mask("CapBnd") & (1 << 21), 0, "{who:?}");
    }
}

// ---- Memory held by tmpfs ------------------------------------------------------------------

/// The size in bytes of the file system of each path, from `stat -f` inside a container of
/// `who` started with `options` on `root`.
fn sizes_inside(who: As, options: &[&str], root: &str, paths: &[&str]) -> Vec<u64> {
    let mut args: Vec<&str> = options.to_vec();
    args.extend([root, "stat", "-f", "-c", "%b %S"]);
    args.extend(paths);
    let out = output(command(who, "contain", &args));
    let text = expect_success(&out);
    let sizes: Vec<u64> = text
        .lines()
        .map(|line| {
            let (blocks, size) = line.split_once(' ').expect("two numbers");
            blocks.parse::<u64>().unwrap() * size.trim().parse::<u64>().unwrap()
        })
        .collect();
    assert_eq!(sizes.len(), paths.len(), "{options:?}: {text}");
    sizes
}

/// The machine's memory in bytes, as /proc/meminfo says.
fn memory() -> u64 {
    let text = read(Path::new("/proc/meminfo"));
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    kb * 1024
}

/// Asserts that `size` is `percent` of the machine's memory (tmpfs rounds to pages).
#[track_caller]
fn expect_share(size: u64, percent: u64, what: &str) {
    let wanted = memory() * percent / 100;
    assert!(
        size.abs_diff(wanted) <= 1 << 20,
        "{what}: {size} bytes, not {percent}% of {} ({wanted})",
        memory()
    );
}

const MIB: u64 = 1 << 20;

#[test]
fn dev_shm_holds_64_mib() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        let sizes = sizes_inside(who, &["-c"], &root.path_arg(), &["/dev/shm", "/dev"]);
        assert_eq!(sizes, [64 * MIB, 64 * MIB], "{who:?}");
    }
}

#[test]
fn the_temporary_writable_layer_holds_a_quarter_of_memory_or_its_size() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        let dir = root.path_arg();
        let sizes = sizes_inside(who, &["-c", "--tmp-overlay"], &dir, &["/", "/tmp"]);
        expect_share(sizes[0], 25, "--tmp-overlay");
        assert_eq!(sizes[1], sizes[0], "{who:?}: one layer");
        let sized = ["-c", "--tmp-overlay", "--tmp-overlay-size", "32m"];
        assert_eq!(sizes_inside(who, &sized, &dir, &["/"]), [32 * MIB]);
        let percent = ["-c", "--tmp-overlay", "--tmp-overlay-size", "10%"];
        expect_share(sizes_inside(who, &percent, &dir, &["/"])[0], 10, "10%");
        // The layer is full at its size.
        let script = "dd if=/dev/zero of=/big bs=1M count=3 2>/dev/null; echo $?; \
                      rm -f /big; echo ok > /small && cat /small";
        let out = contain(
            who,
            &["-c", "--tmp-overlay", "--tmp-overlay-size", "2m"],
            &root,
            &["sh", "-c", script],
        );
        assert_eq!(expect_success(&out), "1\nok\n", "{who:?}");
    }
}

#[test]
fn a_bad_writable_layer_size_is_refused() {
    let root = busybox_rootfs();
    for (size, why) in [
        ("", "empty"),
        ("big", "not a size"),
        ("0", "not a size"),
        ("12x", "not a size"),
        ("0%", "1% to 100%"),
        ("101%", "1% to 100%"),
        ("1.5g", "not a size"),
        ("5t", "not a size"),
        ("99999999999999g", "not a size"),
    ] {
        let out = contain(
            As::User,
            &["--tmp-overlay", "--tmp-overlay-size", size],
            &root,
            &["echo", "started"],
        );
        let line = expect_error(&out, "contain", 125);
        assert!(
            line.contains("--tmp-overlay-size") && line.contains(why),
            "{size:?}: {line}"
        );
    }
    // Without a temporary layer there is nothing to size.
    let out = contain(
        As::User,
        &["--tmp-overlay-size", "1g"],
        &root,
        &["echo", "started"],
    );
    let line = expect_error(&out, "contain", 125);
    assert!(line.contains("--tmp-overlay"), "{line}");
}

#[test]
fn the_host_sandbox_has_sized_tmpfs_mounts() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let paths = ["/", "/usr", "/tmp", "/run", "/dev/shm"];
        let sizes = sizes_inside(who, &["-c", "--tmp-overlay"], "/", &paths);
        assert_eq!(sizes[0], 4 * MIB, "{who:?}: / holds mount points only");
        expect_share(sizes[1], 25, "the writable layer under /usr");
        expect_share(sizes[2], 10, "/tmp");
        expect_share(sizes[3], 10, "/run");
        assert_eq!(sizes[4], 64 * MIB, "{who:?}: /dev/shm");
        let sized = ["-c", "--tmp-overlay", "--tmp-overlay-size", "16m"];
        assert_eq!(sizes_inside(who, &sized, "/", &["/usr"]), [16 * MIB]);
    }
}
