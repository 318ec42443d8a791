//! The read-only mounts contain makes stay read-only: container root, who may mount what it
//! likes in its own mount namespace, can neither make one writable again (a remount or a bind
//! remount read-write) nor unmount one to see what it covers. contain makes them in a mount
//! namespace of an outer user namespace and runs the container in an inner one, where the
//! kernel locks them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use tests::*;

/// Shell lines that mount a tmpfs on /tmp and print `control`: container root may mount, so
/// the refusals that follow are the kernel's locks, not a lack of rights.
const CONTROL: &str = "mount -t tmpfs t /tmp && echo control; ";

/// Shell lines that try, as container root, to make the mount at `path` writable, and print
/// what succeeded.
fn try_to_unlock(path: &str) -> String {
    format!(
        "mount -o remount,rw {path} 2>/dev/null && echo remounted {path}; \
         mount -o remount,bind,rw {path} 2>/dev/null && echo bind-remounted {path}; "
    )
}

#[test]
fn sys_of_the_host_network_stays_read_only_and_its_cgroup_mounted() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        let script = format!(
            "{CONTROL}{}\
             umount /sys/fs/cgroup 2>/dev/null && echo unmounted; \
             umount -l /sys/fs/cgroup 2>/dev/null && echo detached; \
             touch /sys/kernel/x 2>/dev/null && echo written; \
             grep -q ' /sys ro,' /proc/self/mountinfo && echo read-only",
            try_to_unlock("/sys")
        );
        let out = contain(who, &["-c", "-n"], &root, &["sh", "-c", &script]);
        assert_eq!(
            expect_success(&out),
            "control\nread-only\n",
            "{who:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn the_read_only_binds_of_a_host_sandbox_stay_read_only() {
    // A top-level directory with a file system mounted below it is bound read-only into the
    // sandbox, with what is below. The test makes one in a mount namespace of its own: a
    // tmpfs on /mnt with another on /mnt/sub, holding a file anyone may write.
    let inside = format!(
        "{CONTROL}{}{}\
         {{ echo changed > /mnt/sub/f; }} 2>/dev/null && echo written; \
         umount /mnt/sub 2>/dev/null && echo unmounted; \
         echo done",
        try_to_unlock("/mnt"),
        try_to_unlock("/mnt/sub")
    );
    let setup = format!(
        "mount -t tmpfs -o mode=0755 t /mnt && mkdir /mnt/sub && \
         mount -t tmpfs -o mode=1777 s /mnt/sub && echo original > /mnt/sub/f && \
         chmod 666 /mnt/sub/f && contain -c --tmp-overlay / /bin/sh -c '{inside}'; \
         cat /mnt/sub/f"
    );
    for (who, namespace) in [
        (As::User, "pseudo -m"),
        (As::Root, "unshare --mount --propagation private"),
    ] {
        if !require(who) {
            continue;
        }
        let out = sh(who, &format!("{namespace} sh -c \"{setup}\""));
        assert_eq!(
            expect_success(&out),
            "control\ndone\noriginal\n",
            "{who:?}: {}",
            describe(&out)
        );
    }
}

#[test]
fn a_layer_stays_unchanged_whatever_container_root_remounts() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        let layer = TempDir::new();
        let file = layer.write("from-layer", "layer\n");
        fs::set_permissions(layer.path(), fs::Permissions::from_mode(0o755)).unwrap();
        // Container root's, as a tree of its own would be: the container may change the file.
        let (uid, gid) = container_root_on_host(who);
        std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
        let before = tree_snapshot(layer.path());
        // Every mount is tried, the root included, and the layer's file written through them.
        let script = format!(
            "{CONTROL}for m in $(cut -d' ' -f5 /proc/self/mountinfo); do \
             mount -o remount,rw $m 2>/dev/null; mount -o remount,bind,rw $m 2>/dev/null; \
             done; echo changed > /from-layer; cat /from-layer"
        );
        let out = contain(
            who,
            &["-c", "--tmp-overlay", "--layer", &layer.path_arg()],
            &root,
            &["sh", "-c", &script],
        );
        assert_eq!(
            expect_success(&out),
            "control\nchanged\n",
            "{who:?}: {}",
            describe(&out)
        );
        assert!(
            tree_snapshot(layer.path()) == before,
            "{who:?}: the layer changed"
        );
    }
}

/// With a network namespace of its own, the container's /sys is a new sysfs of that namespace,
/// read-only. It is mounted after the lock point (the kernel lets only root of the namespace
/// that owns the network mount it), so container root may clear the read-only flag of that
/// mount, or mount the same sysfs again; the file system itself stays read-only, and nothing
/// in it, not even the settings of the container's own network, can be written.
#[test]
fn the_containers_own_sys_stays_read_only() {
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        // lo's MTU is already 65536: were the write let through, nothing would change.
        let script = format!(
            "{CONTROL}{}mkdir /tmp/s; mount -t sysfs -o ro s /tmp/s 2>/dev/null; \
             mount -o remount,bind,rw /tmp/s 2>/dev/null; \
             for f in /sys/class/net/lo/mtu /tmp/s/class/net/lo/mtu; do \
             {{ echo 65536 > $f; }} 2>&1 | grep -q 'Read-only file system' && echo refused $f; \
             done",
            try_to_unlock("/sys")
        );
        let out = contain(who, &["-c"], &root, &["sh", "-c", &script]);
        let shown = expect_success(&out);
        for file in ["/sys/class/net/lo/mtu", "/tmp/s/class/net/lo/mtu"] {
            assert!(
                shown.contains(&format!("refused {file}\n")),
                "{who:?}: {file} was not refused as read-only: {}",
                describe(&out)
            );
        }
    }
}

/// /proc is the container's own, mounted after the lock point, and nothing in it is bound
/// read-only: what the host's kernel settings need is that container root, whatever it
/// remounts, cannot open them for writing (they are host root's, unmapped inside), while the
/// settings of its own network namespace are its own. Each file is only opened (a `:` with
/// `>>`), never written.
#[test]
fn the_hosts_kernel_settings_in_proc_cannot_be_opened_for_writing() {
    let host_files = [
        "/proc/sysrq-trigger",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/vm/drop_caches",
        "/proc/sys/kernel/hostname",
        "/proc/sys/fs/binfmt_misc/register",
    ];
    for who in [As::User, As::Root] {
        if !require(who) {
            continue;
        }
        let root = busybox_rootfs_of(who);
        for (options, own_network) in [(&["-c"][..], true), (&["-c", "-n"][..], false)] {
            let files = [&host_files[..], &["/proc/sys/net/ipv4/ip_forward"]].concat();
            let script = format!(
                "mount -o remount,rw /proc 2>/dev/null; for f in {}; do \
                 if (: >> $f) 2>/dev/null; then echo opened $f; fi; done; echo done",
                files.join(" ")
            );
            let out = contain(who, options, &root, &["sh", "-c", &script]);
            // Only the container's own network's setting, and only with a network of its own.
            let expected = match own_network {
                true => "opened /proc/sys/net/ipv4/ip_forward\ndone\n",
                false => "done\n",
            };
            assert_eq!(
                expect_success(&out),
                expected,
                "{who:?} {options:?}: {}",
                describe(&out)
            );
        }
    }
}
