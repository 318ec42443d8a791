//! The user's own mounts of a container: `--bind SRC[:DEST]`, `--ro-bind SRC[:DEST]` and
//! `--tmpfs DEST`.
//!
//! SRC is a path of the caller's (relative ones from the caller's working directory), checked
//! before anything starts. DEST is a path inside the container, resolved as every other mount
//! target of the root is ([`Rootfs::mount_point`]: symbolic links never lead out of it) and
//! created when missing, as a directory or an empty file to match SRC: in the writable layer
//! of a layered root, in DIR itself otherwise. The mounts are made with the root's own, in the
//! setup stage before the lock point (see `Container::setup`), so that the kernel locks them
//! and container root can neither make a read-only one writable nor unmount one: after /dev
//! and the display's socket, before init's /proc (and a /sys of its own network) and the `-i`
//! hook; parents before what lies below them, whatever the order given.
//!
//! The setup opens every SRC before it mounts anything, in its new mount namespace: the host's
//! sandbox (`--tmp-overlay /`) mounts a tmpfs on /tmp of that namespace to build the root in,
//! which would hide a SRC below /tmp from a later lookup by path.

use crate::mount::{fd_path, make_tree_read_only, Kind, Rootfs, TmpfsSize};
use anyhow::{anyhow, bail, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// What the user mounts at one DEST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// SRC of the host, bound with everything mounted below it; read-only with `--ro-bind`.
    Bind { source: PathBuf, read_only: bool },
    /// A new, empty tmpfs of this size.
    Tmpfs(TmpfsSize),
}

/// One mount the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMount {
    /// The path inside the container, absolute and normalized (no `.`, no trailing `/`).
    pub dest: String,
    pub what: What,
    /// The option as given, for messages.
    option: String,
}

/// The mounts of `--bind`, `--ro-bind` and `--tmpfs`, checked and in the order they are made.
#[derive(Clone, Debug, Default)]
pub struct UserMounts {
    mounts: Vec<UserMount>,
}

/// `SRC[:DEST]` of `--bind` and `--ro-bind`: DEST defaults to SRC. SRC cannot hold a `:`.
pub fn parse_bind(text: &str) -> Result<(PathBuf, String), String> {
    let (source, dest) = match text.split_once(':') {
        Some((source, dest)) => (source, dest),
        None => (text, text),
    };
    if source.is_empty() {
        return Err("SRC is empty".into());
    }
    if dest.is_empty() {
        return Err("DEST is empty".into());
    }
    Ok((PathBuf::from(source), dest.to_string()))
}

/// The size of a `--tmpfs` without one: a quarter of memory, as the temporary writable layer's
/// (a tmpfs without a size may take half of it, each one its own half).
pub const TMPFS_SIZE: &str = crate::overlay::TMP_LAYER_SIZE;

/// DEST, absolute, without `.` components, repeated or trailing slashes; `..` is refused, as
/// it would name another place than it seems to once links are resolved inside the root.
fn normalized_dest(dest: &str) -> Result<String, &'static str> {
    if !dest.starts_with('/') {
        return Err("DEST must be an absolute path inside the container");
    }
    let mut parts = Vec::new();
    for component in Path::new(dest).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or("DEST is not UTF-8")?),
            Component::ParentDir => return Err("DEST may not hold `..`"),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    if parts.is_empty() {
        return Err("DEST is the container's root itself");
    }
    Ok(format!("/{}", parts.join("/")))
}

impl UserMounts {
    /// Checks the options and orders the mounts: every SRC exists (made absolute from the
    /// working directory), no DEST is given twice, and a DEST is mounted after those above
    /// it. Every failure is one line naming the option.
    pub fn new(
        binds: &[(PathBuf, String)],
        read_only_binds: &[(PathBuf, String)],
        tmpfs: &[String],
    ) -> Result<UserMounts> {
        let mut mounts: Vec<UserMount> = Vec::new();
        let given = binds
            .iter()
            .map(|b| ("--bind", Some(b), false))
            .chain(read_only_binds.iter().map(|b| ("--ro-bind", Some(b), true)));
        for (name, bind, read_only) in given {
            let (source, dest) = bind.expect("a bind");
            let shown_source = crate::errors::shown_os(source.as_os_str());
            let option = format!("{name} {shown_source}");
            let source = std::path::absolute(source).map_err(|e| anyhow!("{option}: {e}"))?;
            if let Err(e) = nix::sys::stat::stat(source.as_path()) {
                bail!("{option}: {}", e.desc());
            }
            let dest = normalized_dest(dest).map_err(|why| anyhow!("{option}: {why}"))?;
            let option = if Path::new(&dest) == source {
                option
            } else {
                format!("{option}:{dest}")
            };
            mounts.push(UserMount {
                dest,
                what: What::Bind { source, read_only },
                option,
            });
        }
        for text in tmpfs {
            let option = format!("--tmpfs {}", crate::errors::printable(text));
            let (dest, size) = match text.rsplit_once(':') {
                Some((dest, size)) => (dest, size),
                None => (text.as_str(), TMPFS_SIZE),
            };
            let size: TmpfsSize = size.parse().map_err(|e| anyhow!("{option}: SIZE {e:#}"))?;
            let dest = normalized_dest(dest).map_err(|why| anyhow!("{option}: {why}"))?;
            mounts.push(UserMount {
                dest,
                what: What::Tmpfs(size),
                option,
            });
        }
        for (i, mount) in mounts.iter().enumerate() {
            if let Some(earlier) = mounts[..i].iter().find(|m| m.dest == mount.dest) {
                bail!(
                    "{}: {} is the DEST of {} already",
                    mount.option,
                    mount.dest,
                    earlier.option
                );
            }
        }
        // Parents first: a DEST below another is mounted on what that one mounted.
        mounts.sort_by_key(|m| m.dest.matches('/').count());
        Ok(UserMounts { mounts })
    }

    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    pub fn mounts(&self) -> &[UserMount] {
        &self.mounts
    }

    /// In the setup, in its new mount namespace, before the root's own mounts: opens every SRC
    /// (O_PATH), as the namespace shows it now.
    pub fn open_sources(&self) -> Result<Sources> {
        let mut opened = Vec::new();
        for mount in &self.mounts {
            let What::Bind { source, .. } = &mount.what else {
                opened.push(None);
                continue;
            };
            let fd = nix::fcntl::open(
                source.as_path(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| anyhow!("{}: {}", mount.option, e.desc()))?;
            opened.push(Some(fd));
        }
        Ok(Sources(opened))
    }

    /// Makes the mounts in `rootfs`, from the sources opened by [`UserMounts::open_sources`].
    pub fn mount(&self, rootfs: &Rootfs, sources: Sources) -> Result<()> {
        for (mount, source) in self.mounts.iter().zip(sources.0) {
            match (&mount.what, source) {
                (What::Tmpfs(size), _) => rootfs
                    .mount_onto(
                        &mount.dest,
                        "tmpfs",
                        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                        Some(&format!("mode=0755,{}", size.option())),
                    )
                    .map_err(|e| anyhow!("{}: {}", mount.option, crate::errors::one_line(&e)))?,
                (What::Bind { read_only, .. }, Some(source)) => {
                    bind(rootfs, mount, &source, *read_only)?
                }
                (What::Bind { .. }, None) => bail!("{}: not opened", mount.option),
            }
        }
        Ok(())
    }
}

/// The opened SRC of each mount (None for a tmpfs), in the order of [`UserMounts::mounts`].
pub struct Sources(Vec<Option<OwnedFd>>);

/// Binds `source` onto the mount's DEST, read-only with everything below it if asked.
fn bind(rootfs: &Rootfs, mount: &UserMount, source: &OwnedFd, read_only: bool) -> Result<()> {
    let fail = |why: String| anyhow!("{}: {why}", mount.option);
    let stat = fstat(source).map_err(|e| fail(e.desc().into()))?;
    let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    let kind = if is_dir { Kind::Directory } else { Kind::File };
    let target = rootfs
        .mount_point(&mount.dest, kind)
        .map_err(|e| fail(crate::errors::one_line(&e)))?;
    mount_bind(source, &target).map_err(|e| fail(e.desc().into()))?;
    if read_only {
        // Found afresh: the descriptor taken before the mount holds what it covers.
        let bound = rootfs
            .find_new_mount(&mount.dest, &target, source)
            .map_err(|e| fail(crate::errors::one_line(&e)))?;
        make_tree_read_only(&bound)
            .map_err(|e| fail(format!("making it read-only: {}", e.desc())))?;
    }
    Ok(())
}

fn mount_bind(source: &OwnedFd, target: &OwnedFd) -> nix::Result<()> {
    mount(
        Some(fd_path(source).as_path()),
        fd_path(target).as_path(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(source: &str, dest: &str) -> (PathBuf, String) {
        (PathBuf::from(source), dest.to_string())
    }

    #[test]
    fn parses_src_and_dest() {
        assert_eq!(parse_bind("/srv"), Ok(bind("/srv", "/srv")));
        assert_eq!(parse_bind("/srv:/data"), Ok(bind("/srv", "/data")));
        assert_eq!(parse_bind("rel:/a:b"), Ok(bind("rel", "/a:b")));
        assert!(parse_bind(":/x").is_err());
        assert!(parse_bind("/x:").is_err());
    }

    #[test]
    fn dest_is_absolute_and_normalized() {
        assert_eq!(normalized_dest("/a//b/./c/"), Ok("/a/b/c".into()));
        assert!(normalized_dest("a/b").is_err());
        assert!(normalized_dest("/a/../b").is_err());
        assert!(normalized_dest("/").is_err());
        assert!(normalized_dest("/./").is_err());
    }

    #[test]
    fn parents_are_mounted_first_and_a_dest_only_once() {
        let mounts = UserMounts::new(
            &[bind("/", "/a/b/c")],
            &[bind("/", "/a/b")],
            &["/a".to_string()],
        )
        .unwrap();
        let dests: Vec<&str> = mounts.mounts().iter().map(|m| m.dest.as_str()).collect();
        assert_eq!(dests, ["/a", "/a/b", "/a/b/c"]);
        let twice = UserMounts::new(&[bind("/", "/x")], &[], &["/x/".to_string()]);
        assert_eq!(
            crate::errors::one_line(&twice.unwrap_err()),
            "--tmpfs /x/: /x is the DEST of --bind /:/x already"
        );
    }

    #[test]
    fn tmpfs_takes_a_size() {
        let mounts = UserMounts::new(&[], &[], &["/a:16m".into(), "/b".into()]).unwrap();
        let sizes: Vec<&What> = mounts.mounts().iter().map(|m| &m.what).collect();
        assert_eq!(
            sizes,
            [
                &What::Tmpfs("16m".parse().unwrap()),
                &What::Tmpfs(TMPFS_SIZE.parse().unwrap())
            ]
        );
        let bad = UserMounts::new(&[], &[], &["/a:0".into()]).unwrap_err();
        assert!(crate::errors::one_line(&bad).starts_with("--tmpfs /a:0: SIZE "));
    }

    #[test]
    fn a_missing_src_is_refused() {
        let err = UserMounts::new(&[bind("/nonexistent-src-of-a-test", "/x")], &[], &[]);
        assert_eq!(
            crate::errors::one_line(&err.unwrap_err()),
            "--bind /nonexistent-src-of-a-test: No such file or directory"
        );
    }
}
