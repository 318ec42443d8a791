//! systemd as the container's init: how contain tells, and what systemd expects of a container
//! manager besides what every init gets (systemd's CONTAINER_INTERFACE document): a cgroup
//! subtree of its own (crate::container_cgroup), a tmpfs on /run and /run/lock, `container_uuid`
//! in its environment, SIGRTMIN+3 to halt, CAP_SYS_MODULE and CAP_SYS_RAWIO withheld.

use crate::mount::{resolve_path_in, Rootfs};
use crate::process::DEFAULT_PATH;
use anyhow::{Context, Result};
use nix::mount::MsFlags;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// SIGRTMIN+3 as systemd counts (glibc's SIGRTMIN, 34): its request to halt, which nspawn and
/// podman send to stop it. Not libc's SIGRTMIN of this build: musl's is 35.
pub const HALT_SIGNAL: i32 = 37;

/// The environment variable systemd takes its machine ID from when /etc/machine-id is empty.
pub const UUID_VARIABLE: &str = "container_uuid";

/// Capabilities withheld from a systemd init, as systemd-nspawn does, for what a user
/// namespace cannot do anyway: CAP_SYS_MODULE (16; without it systemd does not try to load
/// modules) and CAP_SYS_RAWIO (17; the units that need it, the debugfs and tracefs mounts the
/// kernel refuses in a user namespace, are then skipped rather than failed).
pub const WITHHELD_CAPABILITIES: [u8; 2] = [16, 17];

/// True if `command`, run as init in the tree made of `roots` (the top one first: DIR, then
/// the --layer directories), is systemd: the file it leads to inside, links followed, is named
/// `systemd` (on Debian /sbin/init leads to /lib/systemd/systemd), as podman's rule has it. A
/// command without a slash is looked up in init's PATH.
pub fn is_systemd(roots: &[&Path], command: &OsStr) -> bool {
    let command = command.as_bytes();
    let Ok(command) = std::str::from_utf8(command) else {
        return false;
    };
    let candidates: Vec<String> = if command.contains('/') {
        vec![command.to_string()]
    } else {
        DEFAULT_PATH
            .split(':')
            .map(|dir| format!("{dir}/{command}"))
            .collect()
    };
    candidates
        .iter()
        .find_map(|inside| {
            roots
                .iter()
                .find_map(|root| resolve_path_in(root, inside))
                .filter(|found| found.is_file())
        })
        .is_some_and(|found| found.file_name() == Some(OsStr::new("systemd")))
}

/// A fresh random UUID (version 4) for `container_uuid`.
pub fn new_uuid() -> Result<String> {
    let mut bytes = [0u8; 16];
    crate::process::random_bytes(&mut bytes).context("reading random bytes for a UUID")?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Mounts what systemd expects to find mounted already: a tmpfs on /run, and one on /run/lock
/// (world-writable and sticky, as Debian's initscripts make it).
pub fn mount_run(rootfs: &Rootfs) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    rootfs.mount_onto("run", "tmpfs", flags, Some("mode=0755,size=20%"))?;
    rootfs.mount_onto(
        "run/lock",
        "tmpfs",
        flags | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=5m"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn init_is_systemd_where_its_link_leads_to_systemd() {
        let base =
            std::env::temp_dir().join(format!("contain-systemd-test.{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let debian = base.join("debian");
        fs::create_dir_all(debian.join("lib/systemd")).unwrap();
        fs::create_dir_all(debian.join("sbin")).unwrap();
        fs::write(debian.join("lib/systemd/systemd"), "").unwrap();
        // Absolute, as Debian's: resolved inside the tree, not on the host.
        symlink("/lib/systemd/systemd", debian.join("sbin/init")).unwrap();
        assert!(is_systemd(&[&debian], OsStr::new("/sbin/init")));
        assert!(is_systemd(&[&debian], OsStr::new("init")));
        assert!(is_systemd(&[&debian], OsStr::new("/lib/systemd/systemd")));
        assert!(!is_systemd(&[&debian], OsStr::new("/bin/sh")));

        let sysvinit = base.join("sysvinit");
        fs::create_dir_all(sysvinit.join("sbin")).unwrap();
        fs::write(sysvinit.join("sbin/init"), "").unwrap();
        assert!(!is_systemd(&[&sysvinit], OsStr::new("/sbin/init")));
        // A link that would lead to the host's systemd leads nowhere inside.
        let escaping = base.join("escaping");
        fs::create_dir_all(escaping.join("sbin")).unwrap();
        symlink(
            "../../../../debian/lib/systemd/systemd",
            escaping.join("sbin/init"),
        )
        .unwrap();
        assert!(!is_systemd(&[&escaping], OsStr::new("/sbin/init")));
        // Found in a lower layer when the top has nothing there.
        let empty = base.join("empty");
        fs::create_dir_all(&empty).unwrap();
        assert!(is_systemd(&[&empty, &debian], OsStr::new("init")));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn uuids_are_random_version_4() {
        let (a, b) = (new_uuid().unwrap(), new_uuid().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
    }
}
