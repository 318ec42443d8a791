//! The container's root filesystem: DIR bound onto itself, the kernel filesystems a distribution
//! expects, then pivot_root into it.
//!
//! DIR is the user's and may hold anything, symbolic links included: DIR/proc may point to
//! /tmp/x or to ../../elsewhere, DIR/dev to a file. So every path below DIR is resolved as if
//! DIR were `/` (openat2 with RESOLVE_IN_ROOT, as runc and crun do; a walk of our own with the
//! same rules on kernels before 5.6), and every mount goes onto the descriptor that resolution
//! returned, through /proc/self/fd/N, never onto a path the kernel would resolve again: a link
//! leads somewhere inside DIR or the start is refused with one line naming it.
//!
//! It must not mount on, create or open a path below DIR by a name the kernel would resolve again,
//! nor follow a link out of DIR; it does not decide which mounts a container gets (container does).

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag, AT_FDCWD};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, statvfs, FsFlags, Statvfs};
use std::collections::VecDeque;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Host device nodes bound into the container's /dev: mknod is refused in a user namespace.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Links every distribution expects in /dev.
const DEV_LINKS: [(&str, &str); 5] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// What a container's /dev/shm holds, as under Docker and podman. A tmpfs without a size may
/// take half of the machine's memory, and each one its own half.
pub const SHM_SIZE: &str = "64m";

/// The size of a tmpfs as its `size=` option takes it: bytes with an optional k, m or g suffix
/// (KiB, MiB, GiB), or a share of the machine's memory from 1% to 100%. Never 0, which would
/// mean no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TmpfsSize(String);

impl TmpfsSize {
    /// [`crate::overlay::TMP_LAYER_SIZE`], the temporary writable layer's default.
    pub fn default_layer() -> TmpfsSize {
        TmpfsSize(crate::overlay::TMP_LAYER_SIZE.to_string())
    }

    /// The mount option, `size=...`.
    pub fn option(&self) -> String {
        format!("size={}", self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for TmpfsSize {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<TmpfsSize> {
        const EXPECTED: &str = "expected N, Nk, Nm, Ng or N% of memory";
        if text.is_empty() {
            anyhow::bail!("empty ({EXPECTED})");
        }
        let shown = crate::errors::shown(text.as_bytes());
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if let Some(percent) = text.strip_suffix('%') {
            if !all_digits(percent) {
                anyhow::bail!("'{shown}' is not a size ({EXPECTED})");
            }
            return match percent.parse::<u32>() {
                Ok(1..=100) => Ok(TmpfsSize(text.to_string())),
                _ => anyhow::bail!("'{shown}': a share of memory is 1% to 100%"),
            };
        }
        let (digits, unit) = match text.char_indices().last() {
            Some((at, c)) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_lowercase()),
            _ => (text, 'b'),
        };
        let scale: u64 = match unit {
            'b' => 1,
            'k' => 1 << 10,
            'm' => 1 << 20,
            'g' => 1 << 30,
            _ => anyhow::bail!("'{shown}' is not a size ({EXPECTED})"),
        };
        let bytes = match digits.parse::<u64>() {
            Ok(n) if all_digits(digits) => n.checked_mul(scale),
            _ => None,
        };
        match bytes {
            Some(1..) => Ok(TmpfsSize(match unit {
                'b' => digits.to_string(),
                unit => format!("{digits}{unit}"),
            })),
            _ => anyhow::bail!("'{shown}' is not a size ({EXPECTED})"),
        }
    }
}

impl std::fmt::Display for TmpfsSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// clap value parser for a tmpfs size.
pub fn parse_tmpfs_size(text: &str) -> Result<TmpfsSize, String> {
    text.parse::<TmpfsSize>().map_err(|e| format!("{e:#}"))
}

/// mountinfo writes space, tab, newline and backslash in paths as \ooo octal escapes.
pub fn unescape_mountinfo(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Stops mounts made from here on from propagating to the host's (or any other) namespace.
pub fn make_private() -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making mounts private")
}

/// Opens the directory `path` (O_PATH): a handle to it that later mounts on top or renames
/// of its path do not change.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", path.display()))
}

/// Opens the directory at the absolute `path` (O_PATH) without following a symbolic link
/// anywhere on the way (openat2 RESOLVE_NO_SYMLINKS; a walk with O_NOFOLLOW on kernels
/// before 5.6), for a path resolved once already (canonical) that must still lead where it
/// did: a link put on the way since is refused (ELOOP), not followed.
pub fn open_dir_without_links(path: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    for _ in 0..16 {
        match openat2(AT_FDCWD, path, how) {
            Err(Errno::EAGAIN) => continue,
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => break,
            result => return result,
        }
    }
    let mut dir = nix::fcntl::open("/", flags, Mode::empty())?;
    for part in path.iter().filter(|p| *p != "/") {
        dir = openat(&dir, part, flags | OFlag::O_NOFOLLOW, Mode::empty())?;
    }
    Ok(dir)
}

/// The ID of the mount `fd` is on (the `mnt_id` of /proc/self/fdinfo), which no other mount
/// of the system has while it exists.
pub fn mount_id(fd: &impl AsRawFd) -> Result<u64> {
    let path = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let info = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    info.lines()
        .find_map(|line| line.strip_prefix("mnt_id:"))
        .and_then(|id| id.trim().parse().ok())
        .with_context(|| format!("reading {path}: no mnt_id"))
}

/// The device and inode of what `fd` holds: who it is, whatever path led to it.
pub fn identity(fd: &impl AsFd) -> nix::Result<(u64, u64)> {
    let stat = fstat(fd)?;
    Ok((stat.st_dev, stat.st_ino))
}

/// Mounts a new tmpfs with `flags` and `options` on `target`, a path of the caller's own
/// making (never one inside a container's tree: see [`Rootfs::mount_onto`]).
pub fn tmpfs(target: &Path, flags: MsFlags, options: &str) -> Result<()> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options))
        .with_context(|| format!("mounting a tmpfs on {}", target.display()))
}

/// Binds `source` onto `target`, with everything mounted below it.
pub fn bind(source: &Path, target: &Path) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("binding {} to {}", source.display(), target.display()))
}

/// Makes the bind mount at `target` read-only. Flags the kernel locked on the original (nosuid,
/// nodev, noexec, ...) must be repeated or the remount is refused.
pub fn remount_read_only(target: &Path) -> Result<()> {
    let flags =
        statvfs(target).with_context(|| format!("reading mount flags of {}", target.display()))?;
    remount_read_only_keeping(target, &flags)
        .with_context(|| format!("making {} read-only", target.display()))
}

/// Remounts the bind mount at `target` read-only, repeating the flags `locked` shows.
fn remount_read_only_keeping(target: &Path, locked: &Statvfs) -> nix::Result<()> {
    remount_bind_keeping(target, locked, MsFlags::MS_RDONLY)
}

/// Remounts the bind mount `target` (an O_PATH descriptor of the mount's root) with `flags`
/// (MS_RDONLY, MS_NOSUID, ...), repeating the flags the kernel locked on it, which it shows.
pub fn remount_bind(target: BorrowedFd<'_>, flags: MsFlags) -> nix::Result<()> {
    let locked = fstatvfs(target)?;
    remount_bind_keeping(&fd_path(&target), &locked, flags)
}

fn remount_bind_keeping(target: &Path, locked: &Statvfs, wanted: MsFlags) -> nix::Result<()> {
    let locked = locked.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | wanted;
    for (fs_flag, ms_flag) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME (4096, as the kernel reports it): not in nix or libc for musl.
        (FsFlags::from_bits_retain(4096), MsFlags::MS_RELATIME),
    ] {
        if locked.contains(fs_flag) {
            flags |= ms_flag;
        }
    }
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
}

/// Makes the mount at `mounted` (a descriptor of its root) read-only, keeping the flags the
/// kernel locked on it.
fn remount_fd_read_only(mounted: &OwnedFd) -> nix::Result<()> {
    let flags = fstatvfs(mounted)?;
    remount_read_only_keeping(&fd_path(mounted), &flags)
}

/// What a mount point is made as when it does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory (mode 0755), for a file system or a bound directory.
    Directory,
    /// An empty file (mode 0644), for a bound device node, socket or file.
    File,
}

/// The path through which the kernel reaches exactly what `fd` holds: a mount through it
/// lands there, whatever links or renames the path to it has meanwhile.
pub(crate) fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Opens `inside` (O_PATH) as if `root` were `/`: absolute links and `..` stop at `root`,
/// and the magic links of /proc (which could name anything) are refused.
fn resolve_in_root(root: BorrowedFd<'_>, inside: &str, directory: bool) -> nix::Result<OwnedFd> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if directory {
        flags |= OFlag::O_DIRECTORY;
    }
    // An empty path is ENOENT to the kernel; "." is the root itself.
    let inside = match inside.trim_matches('/') {
        "" => ".",
        path => path,
    };
    let how = OpenHow::new()
        .flags(flags)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // The kernel answers EAGAIN when a rename raced with ".." during the walk: try again.
    for _ in 0..16 {
        match openat2(root, inside, how) {
            Err(Errno::EAGAIN) => continue,
            // Kernels before 5.6 lack openat2; some seccomp profiles answer EPERM for it.
            Err(Errno::ENOSYS) | Err(Errno::EPERM) => return walk_in_root(root, inside, directory),
            result => return result,
        }
    }
    Err(Errno::EAGAIN)
}

/// What `inside` leads to when resolved as if `root` were `/` (links followed, inside it
/// only), as a host path; None when it leads nowhere. For looking, never for mounting.
pub fn resolve_path_in(root: &Path, inside: &str) -> Option<PathBuf> {
    let root = open_dir(root).ok()?;
    let found = resolve_in_root(root.as_fd(), inside, false).ok()?;
    fs::read_link(fd_path(&found)).ok()
}

/// The most symbolic links one resolution follows, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// openat2's RESOLVE_IN_ROOT done in user space: one component at a time, each opened with
/// O_NOFOLLOW from the descriptor of the directory before it; a symbolic link is read and its
/// target walked in its place (from `root` when absolute); `..` goes back to the directory
/// held before and never above `root`. Nothing is resolved by the kernel from a path string
/// that a link could redirect, so nothing on the way leads out of `root`.
fn walk_in_root(root: BorrowedFd<'_>, inside: &str, directory: bool) -> nix::Result<OwnedFd> {
    // The directories walked below root, the current one last.
    let mut walked: Vec<OwnedFd> = Vec::new();
    let mut pending: VecDeque<String> = inside.split('/').map(str::to_string).collect();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        match name.as_str() {
            "" | "." => continue,
            ".." => {
                walked.pop();
                continue;
            }
            _ => {}
        }
        let here = walked.last().map_or(root, |fd| fd.as_fd());
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let next = openat(here, name.as_str(), flags, Mode::empty())?;
        let kind = SFlag::from_bits_truncate(fstat(&next)?.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_LINKS {
                return Err(Errno::ELOOP);
            }
            let target = readlinkat(here, name.as_str())?;
            let target = target.to_str().ok_or(Errno::EINVAL)?;
            if target.starts_with('/') {
                walked.clear();
            }
            for part in target.split('/').rev() {
                pending.push_front(part.to_string());
            }
            continue;
        }
        let more = pending.iter().any(|p| !p.is_empty() && p != ".");
        if kind != SFlag::S_IFDIR && (more || directory) {
            return Err(Errno::ENOTDIR);
        }
        walked.push(next);
    }
    match walked.pop() {
        Some(fd) => Ok(fd),
        None => openat(root, ".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()),
    }
}

/// The parent and the last component of a relative path inside the root ("" for the root).
fn split_last(inside: &str) -> (&str, &str) {
    let inside = inside.trim_matches('/');
    match inside.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", inside),
    }
}

fn mount_fs(
    fstype: &str,
    target: BorrowedFd<'_>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    mount(
        Some(fstype),
        fd_path(&target).as_path(),
        Some(fstype),
        flags,
        data,
    )
}

/// open_tree(2), move_mount(2) and mount_setattr(2) flags (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// struct mount_attr of mount_setattr(2) (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the mount at `mounted` (a descriptor of its root) read-only, and every mount below
/// it, as a recursive bind with `ro` means: mount_setattr with AT_RECURSIVE (Linux 5.12); on
/// older kernels a remount of the top one alone, keeping the flags the kernel locked on it.
pub fn make_tree_read_only(mounted: &OwnedFd) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads the NUL-terminated empty path and `attr`, a live repr(C)
    // value of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mounted.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    match Errno::result(ret) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS) => remount_fd_read_only(mounted),
        Err(e) => Err(e),
    }
}

/// Copies the mount tree at the working directory (a recursive bind) and mounts the copy on
/// top of it, returning the copy's root: the working directory bound onto itself, reached
/// without a walk from `/`.
fn bind_working_directory_onto_itself() -> nix::Result<OwnedFd> {
    let here = c".";
    let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: open_tree reads the NUL-terminated path and returns a new descriptor or -1.
    let tree = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, here.as_ptr(), flags) };
    if tree < 0 {
        return Err(Errno::last());
    }
    // SAFETY: open_tree returned this descriptor to us alone.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as RawFd) };
    attach_on_working_directory(&tree)?;
    Ok(tree)
}

/// fsopen(2), fsconfig(2) and fsmount(2) constants (linux/mount.h).
const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;

/// A new file system of type `fstype`, mounted nowhere yet, with `options` (a name and a
/// value, or a name alone for a flag): the root of the new mount, to fill through the
/// descriptor and then attach with [`attach_on_working_directory`].
pub fn new_detached(fstype: &str, options: &[(&str, Option<&str>)]) -> nix::Result<OwnedFd> {
    let cstring = |s: &str| std::ffi::CString::new(s).map_err(|_| Errno::EINVAL);
    let fstype = cstring(fstype)?;
    // SAFETY: fsopen reads the NUL-terminated name and returns a new descriptor or -1.
    let context = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    if context < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fsopen returned this descriptor to us alone.
    let context = unsafe { OwnedFd::from_raw_fd(context as RawFd) };
    let configure =
        |command: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char| {
            // SAFETY: fsconfig reads the NUL-terminated key and value (or takes null for none).
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_fsconfig,
                    context.as_raw_fd(),
                    command,
                    key,
                    value,
                    0,
                )
            };
            if ret < 0 {
                Err(Errno::last())
            } else {
                Ok(())
            }
        };
    for (key, value) in options {
        let key = cstring(key)?;
        match value {
            Some(value) => {
                let value = cstring(value)?;
                configure(FSCONFIG_SET_STRING, key.as_ptr(), value.as_ptr())?;
            }
            None => configure(FSCONFIG_SET_FLAG, key.as_ptr(), std::ptr::null())?,
        }
    }
    configure(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null())?;
    // SAFETY: fsmount takes the created context and returns a new descriptor or -1.
    let mounted =
        unsafe { libc::syscall(libc::SYS_fsmount, context.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if mounted < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fsmount returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(mounted as RawFd) })
}

/// Attaches the detached mount `tree` on the working directory, above whatever is mounted
/// there already.
pub fn attach_on_working_directory(tree: &OwnedFd) -> nix::Result<()> {
    // SAFETY: move_mount reads two NUL-terminated paths; `tree` is an open descriptor.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c".".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The caller's working directory, moved to a directory until dropped. A child cloned
/// meanwhile into a new mount namespace starts in that namespace's copy of the directory, and
/// so reaches it even where its credentials could not walk the path to it.
pub struct WorkingDirectory {
    previous: OwnedFd,
}

impl WorkingDirectory {
    /// Enters `dir`, an absolute canonical path, following no symbolic link (one put on the
    /// way since it was resolved is refused).
    pub fn enter(dir: &Path) -> Result<WorkingDirectory> {
        let previous = nix::fcntl::open(
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .context("opening the working directory")?;
        open_dir_without_links(dir)
            .and_then(|fd| nix::unistd::fchdir(&fd))
            .with_context(|| format!("entering {}", dir.display()))?;
        Ok(WorkingDirectory { previous })
    }
}

impl Drop for WorkingDirectory {
    fn drop(&mut self) {
        let _ = nix::unistd::fchdir(&self.previous);
    }
}

/// The new root: a directory that becomes `/` of the container, held open so that every path
/// below it is resolved inside it.
pub struct Rootfs {
    dir: PathBuf,
    root: OwnedFd,
}

impl Rootfs {
    /// Makes the mount tree private and binds `dir` onto itself, since pivot_root needs the
    /// new root to be a mount point. Runs in the setup's new mount namespace, started in
    /// `dir` (see [`WorkingDirectory`]): the bind is made from the working directory, without
    /// walking the path to it, which the container's root may not be allowed to (as root, it
    /// is no host account, and `dir` may be below a 0700 directory of host root's).
    pub fn bind_working_directory(dir: &Path) -> Result<Rootfs> {
        make_private()?;
        Rootfs::rebind_working_directory(dir)
    }

    /// Binds the working directory, the root `dir` built in the outer mount namespace, onto
    /// itself again, in the container's own mount namespace. The copy's root is a mount of that
    /// namespace, which pivot_root takes (it refuses a locked mount, as every mount copied from
    /// the outer namespace is); the mounts below it stay locked to it.
    pub fn rebind_working_directory(dir: &Path) -> Result<Rootfs> {
        match bind_working_directory_onto_itself() {
            Ok(root) => Ok(Rootfs {
                dir: dir.to_path_buf(),
                root,
            }),
            // Kernels before 5.2 lack open_tree: bind the path (reachable or not).
            Err(Errno::ENOSYS) => {
                bind(dir, dir)?;
                Rootfs::open(dir)
            }
            Err(e) => Err(anyhow!("binding {} to itself: {}", dir.display(), e.desc())),
        }
    }

    /// Takes the working directory, `dir` entered by [`WorkingDirectory`], as the new root
    /// without mounting anything: for a container left in its caller's mount namespace, whose
    /// mounts are the caller's own (entered with [`Rootfs::chroot`]), or for the root a setup
    /// in the same mount namespace built and entered (pivoted into).
    pub fn working_directory(dir: &Path) -> Result<Rootfs> {
        let root =
            open_dir(Path::new(".")).with_context(|| format!("opening {}", dir.display()))?;
        Ok(Rootfs {
            dir: dir.to_path_buf(),
            root,
        })
    }

    /// Takes `root`, the root of a mount on `dir` attached by descriptor (which the path to
    /// `dir` may not reach), as the new root.
    pub fn from_mount(dir: &Path, root: OwnedFd) -> Rootfs {
        Rootfs {
            dir: dir.to_path_buf(),
            root,
        }
    }

    /// Takes `dir`, already a mount point of the container's mount namespace (DIR bound onto
    /// itself, an overlay), as the new root. Call it after the last mount on `dir` itself: the
    /// root is held open, and a later mount there would cover what it holds.
    pub fn open(dir: &Path) -> Result<Rootfs> {
        let root = open_dir(dir)?;
        Ok(Rootfs {
            dir: dir.to_path_buf(),
            root,
        })
    }

    /// Makes the root the working directory, for the -i hook: its path may not be walkable.
    pub fn enter(&self) -> Result<()> {
        nix::unistd::fchdir(&self.root).with_context(|| format!("entering {}", self.dir.display()))
    }

    /// The host's path of `inside`, for messages and for code that runs before the pivot with
    /// the user's own rules. Do not mount on it: see [`Rootfs::mount_point`].
    pub fn path(&self, inside: &str) -> PathBuf {
        self.dir.join(inside.trim_start_matches('/'))
    }

    /// Opens the existing `inside` (O_PATH), resolved as if the root were `/`.
    pub fn resolve(&self, inside: &str) -> Result<OwnedFd> {
        resolve_in_root(self.root.as_fd(), inside, false).map_err(|e| self.refusal(inside, e))
    }

    /// Opens `inside` (O_PATH) to mount on, resolved as if the root were `/`, creating it as
    /// `kind` (and its missing parents as directories) when it does not exist. Refuses, with a
    /// line naming the path, what leaves nowhere sensible to mount: a symbolic link to a
    /// missing target, a file where a directory belongs or the reverse.
    pub fn mount_point(&self, inside: &str, kind: Kind) -> Result<OwnedFd> {
        let directory = kind == Kind::Directory;
        let found = match resolve_in_root(self.root.as_fd(), inside, directory) {
            Err(Errno::ENOENT) => self.create(inside, kind)?,
            Err(e) => return Err(self.refusal(inside, e)),
            Ok(fd) => fd,
        };
        let stat = fstat(&found)?;
        let root = fstat(&self.root)?;
        if !inside.trim_matches('/').is_empty()
            && (stat.st_dev, stat.st_ino) == (root.st_dev, root.st_ino)
        {
            // A link to "/" or ".." would mount over the whole tree.
            return Err(self.refusal(inside, Errno::EBUSY));
        }
        let is_dir = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        match (is_dir, directory) {
            (false, true) => Err(self.refusal(inside, Errno::ENOTDIR)),
            (true, false) => Err(self.refusal(inside, Errno::EISDIR)),
            _ => Ok(found),
        }
    }

    /// Creates the missing `inside` as `kind` in its parent (itself created as needed) and
    /// opens it without following anything.
    fn create(&self, inside: &str, kind: Kind) -> Result<OwnedFd> {
        let (parent, name) = split_last(inside);
        if name.is_empty() || name == "." || name == ".." {
            return Err(self.refusal(inside, Errno::ENOENT));
        }
        let parent_fd = self.mount_point(parent, Kind::Directory)?;
        let made = match kind {
            Kind::Directory => mkdirat(&parent_fd, name, Mode::from_bits_truncate(0o755)),
            Kind::File => openat(
                &parent_fd,
                name,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map(drop),
        };
        match made {
            Ok(()) => {}
            // Something is there although resolving found nothing: a link to a missing target.
            Err(Errno::EEXIST) => return Err(self.refusal(inside, Errno::ENOENT)),
            Err(e) => {
                return Err(anyhow!(
                    "creating {}: {}",
                    self.path(inside).display(),
                    e.desc()
                ))
            }
        }
        let mut flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if kind == Kind::Directory {
            flags |= OFlag::O_DIRECTORY;
        }
        openat(&parent_fd, name, flags, Mode::empty())
            .map_err(|e| anyhow!("opening {}: {}", self.path(inside).display(), e.desc()))
    }

    /// One line for a path inside the root that cannot serve: the host path, why, and where a
    /// symbolic link on the way leads when that is the cause.
    fn refusal(&self, inside: &str, errno: Errno) -> anyhow::Error {
        let path = self.path(inside);
        let (parent, name) = split_last(inside);
        let link = resolve_in_root(self.root.as_fd(), parent, true)
            .and_then(|parent| readlinkat(&parent, name))
            .ok();
        let why = match errno {
            Errno::EBUSY => "it is the container's root itself",
            e => e.desc(),
        };
        match link {
            Some(target) => anyhow!(
                "{}: {why} (a symbolic link to {}, followed inside {})",
                path.display(),
                target.to_string_lossy(),
                self.dir.display()
            ),
            None => anyhow!("{}: {why}", path.display()),
        }
    }

    /// Mounts a new file system of type `fstype` on `inside` (a directory, created when
    /// missing).
    pub fn mount_onto(
        &self,
        inside: &str,
        fstype: &str,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Result<()> {
        let target = self
            .mount_point(inside, Kind::Directory)
            .with_context(|| format!("mounting {fstype}"))?;
        mount_fs(fstype, target.as_fd(), flags, data).map_err(|e| {
            anyhow!(
                "mounting {fstype} on {}: {}",
                self.path(inside).display(),
                e.desc()
            )
        })
    }

    /// Binds `source`, a path of the host's (a directory with everything below it, a file, a
    /// socket, a device node), onto `inside` (created as a directory or an empty file to match
    /// when missing).
    /// Opens the mount just made on `under` (what it covers) of `source`, by resolving
    /// `inside` again (a descriptor taken before the mount holds what it covers), for a change
    /// that must reach that mount: making it read-only. Refuses what that path leads to once
    /// it is not that mount: a process that may write the tree (another container on the same
    /// DIR) may have moved the mount point aside and put a link in its place meanwhile, which
    /// would leave the mount writable and make something else read-only.
    pub fn find_new_mount(
        &self,
        inside: &str,
        under: &OwnedFd,
        source: &OwnedFd,
    ) -> Result<OwnedFd> {
        let found = self.resolve(inside)?;
        let identity = |fd: &OwnedFd| fstat(fd).map(|s| (s.st_dev, s.st_ino));
        let same_source = identity(&found)? == identity(source)?;
        if !same_source || mount_id(&found)? == mount_id(under)? {
            bail!(
                "{}: changed while it was mounted on (moved, or replaced by a link); nothing \
                 is mounted on another path",
                self.path(inside).display()
            );
        }
        Ok(found)
    }

    /// Binds `source` onto `inside` (with what is mounted below it) and returns the
    /// descriptor of what the bind covers (see [`Rootfs::find_new_mount`]).
    pub fn bind_onto(&self, source: &Path, inside: &str) -> Result<OwnedFd> {
        let kind = match fs::metadata(source) {
            Ok(meta) if meta.is_dir() => Kind::Directory,
            Ok(_) => Kind::File,
            Err(e) => return Err(anyhow!("binding {}: {e}", source.display())),
        };
        let target = self
            .mount_point(inside, kind)
            .with_context(|| format!("binding {}", source.display()))?;
        mount(
            Some(source),
            fd_path(&target).as_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| {
            anyhow!(
                "binding {} to {}: {}",
                source.display(),
                self.path(inside).display(),
                e.desc()
            )
        })?;
        Ok(target)
    }

    /// Makes the bind mount at `inside` read-only, keeping the flags the kernel locked on it.
    /// Binds `source` onto `inside` read-only, with everything mounted below it.
    pub fn bind_read_only(&self, source: &Path, inside: &str) -> Result<()> {
        let opened = nix::fcntl::open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("binding {}", source.display()))?;
        let under = self.bind_onto(source, inside)?;
        let target = self.find_new_mount(inside, &under, &opened)?;
        fstatvfs(&target)
            .and_then(|flags| remount_read_only_keeping(&fd_path(&target), &flags))
            .map_err(|e| {
                anyhow!(
                    "making {} read-only: {}",
                    self.path(inside).display(),
                    e.desc()
                )
            })
    }

    /// Mounts /proc for the container's PID namespace (so only the container's processes
    /// show), hiding nothing of the tree below.
    pub fn mount_proc(&self) -> Result<()> {
        self.mount_onto(
            "proc",
            "proc",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        )
    }

    /// Mounts a new, read-only /sys, for a container with a network namespace of its own:
    /// sysfs shows the network devices of the mounter's network namespace, and the kernel
    /// allows it only to root of the user namespace owning that one, so this comes after the
    /// lock point (container root could mount a sysfs of its own anyway).
    pub fn mount_own_sys(&self) -> Result<()> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        self.mount_onto("sys", "sysfs", flags | MsFlags::MS_RDONLY, None)?;
        self.mount_cgroup();
        Ok(())
    }

    /// Binds the host's /sys read-only, for a container sharing the host's network (a new sysfs
    /// needs a network namespace of our own), with cgroup2 over the host's /sys/fs/cgroup. Made
    /// before the lock point: container root can neither make it writable nor unmount the
    /// cgroup2 to see the host's cgroups below.
    pub fn bind_host_sys(&self) -> Result<()> {
        self.bind_read_only(Path::new("/sys"), "sys")?;
        self.mount_cgroup();
        Ok(())
    }

    /// cgroup2 on /sys/fs/cgroup when the kernel lets us (it needs a new cgroup namespace),
    /// otherwise nothing. Only on the kernel's own directory: nothing is created in a
    /// read-only sysfs.
    fn mount_cgroup(&self) {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if let Ok(cgroup) = resolve_in_root(self.root.as_fd(), "sys/fs/cgroup", true) {
            let _ = mount_fs("cgroup2", cgroup.as_fd(), flags, None);
        }
    }

    /// Builds /dev on a tmpfs: the host's harmless devices, a devpts instance of the
    /// container's own, /dev/shm, the usual links, and, with a console, the pty slave bound
    /// at /dev/console.
    pub fn mount_dev(&self, console: Option<&Path>) -> Result<()> {
        self.mount_onto(
            "dev",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=0755,size=65536k"),
        )?;
        // Everything below is made on the fresh tmpfs, reached through its descriptor (DIR/dev
        // itself may be a link to elsewhere inside DIR, resolved once): nothing else can be
        // there yet, so each name is made with O_EXCL and mounted on at once.
        let dev = self.resolve("dev")?;
        let made = |name: &str, e: Errno| {
            anyhow!(
                "creating {}: {}",
                self.path(&format!("dev/{name}")).display(),
                e.desc()
            )
        };
        for name in DEVICES {
            let node = openat(
                &dev,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(|e| made(name, e))?;
            let source = Path::new("/dev").join(name);
            mount(
                Some(source.as_path()),
                fd_path(&node).as_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                anyhow!(
                    "binding {} to {}: {}",
                    source.display(),
                    self.path(&format!("dev/{name}")).display(),
                    e.desc()
                )
            })?;
        }

        // gid=5 (tty) is only accepted when the group is mapped into the container.
        let tty_mapped = fs::read_to_string("/proc/self/gid_map").is_ok_and(|m| gid_mapped(&m, 5));
        let options = if tty_mapped {
            "newinstance,ptmxmode=0666,mode=0620,gid=5"
        } else {
            "newinstance,ptmxmode=0666,mode=0620"
        };
        let shm_options = format!("mode=1777,size={SHM_SIZE}");
        for (name, fstype, flags, options) in [
            (
                "pts",
                "devpts",
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                options,
            ),
            (
                "shm",
                "tmpfs",
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                shm_options.as_str(),
            ),
        ] {
            mkdirat(&dev, name, Mode::from_bits_truncate(0o755)).map_err(|e| made(name, e))?;
            let flags_dir =
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let dir = openat(&dev, name, flags_dir, Mode::empty()).map_err(|e| made(name, e))?;
            mount_fs(fstype, dir.as_fd(), flags, Some(options)).map_err(|e| {
                anyhow!(
                    "mounting {fstype} on {}: {}",
                    self.path(&format!("dev/{name}")).display(),
                    e.desc()
                )
            })?;
        }

        for (name, target) in DEV_LINKS {
            nix::unistd::symlinkat(target, &dev, name).map_err(|e| made(name, e))?;
        }
        if let Some(slave) = console {
            self.bind_onto(slave, "dev/console")?;
        }
        Ok(())
    }

    /// Makes the new root `/` of this process alone, by chroot: in a mount namespace that is
    /// not the container's own, where a pivot would change `/` for every process in it.
    pub fn chroot(self) -> Result<()> {
        nix::unistd::fchdir(&self.root)
            .with_context(|| format!("entering {}", self.dir.display()))?;
        nix::unistd::chroot(".").context("chroot into the new root")?;
        nix::unistd::chdir("/").context("entering the new root")?;
        Ok(())
    }

    /// Makes the new root `/`. pivot_root(".", ".") stacks the old root on top of the new one,
    /// so detaching "." removes it without needing a directory to park it in.
    pub fn pivot(self) -> Result<()> {
        nix::unistd::fchdir(&self.root)
            .with_context(|| format!("entering {}", self.dir.display()))?;
        nix::unistd::pivot_root(".", ".").context("pivot_root into the new root")?;
        umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
        nix::unistd::chdir("/").context("entering the new root")?;
        Ok(())
    }
}

/// True if `gid` appears inside the container in a gid_map text.
fn gid_mapped(map: &str, gid: u32) -> bool {
    map.lines().any(|line| {
        let f: Vec<u64> = line
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        f.len() == 3 && (f[0]..f[0] + f[2]).contains(&(gid as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/x\\134y"), "/x\\y");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\04"), "/end\\04");
    }

    /// A mount point moved aside by a process of another mount namespace (another container
    /// on the same tree) and replaced by a link, between the bind and the change that must
    /// reach it, is refused: the link is not followed to make something else read-only.
    #[test]
    fn a_mount_point_moved_aside_and_replaced_by_a_link_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root, to mount in a mount namespace of its own");
            return;
        }
        let temp = std::env::temp_dir().join(format!("mount-moved.{}", std::process::id()));
        let (root, source) = (temp.join("root"), temp.join("source"));
        for dir in [&root, &root.join("data"), &root.join("other"), &source] {
            fs::create_dir_all(dir).unwrap();
        }
        let (bound, go) = (temp.join("bound"), temp.join("go"));
        let wait_for = |file: &Path| {
            for _ in 0..6000 {
                if file.exists() {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            false
        };
        // The child binds in a mount namespace of its own, where the move below is no move
        // of a mount point (the kernel refuses that only in the namespace that has it).
        let child = crate::process::spawn(libc::CLONE_NEWNS as u64, || {
            make_private()?;
            let rootfs = Rootfs::open(&root)?;
            let opened =
                nix::fcntl::open(&source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
            let under = rootfs.bind_onto(&source, "data")?;
            fs::write(&bound, "")?;
            if !wait_for(&go) {
                return Ok(2);
            }
            match rootfs.find_new_mount("data", &under, &opened) {
                Err(e) if e.to_string().contains("changed while it was mounted on") => Ok(0),
                _ => Ok(1),
            }
        })
        .unwrap();
        assert!(wait_for(&bound), "the child did not bind");
        fs::rename(root.join("data"), root.join("moved")).unwrap();
        symlink("other", root.join("data")).unwrap();
        fs::write(&go, "").unwrap();
        let status = crate::process::wait(child).unwrap();
        fs::remove_dir_all(&temp).unwrap();
        assert_eq!(
            status, 0,
            "the link in place of the mount point was followed"
        );
    }

    #[test]
    fn tmpfs_sizes_are_bytes_units_or_shares_of_memory() {
        let size = |text: &str| text.parse::<TmpfsSize>().map(|s| s.option());
        let err = |text: &str| format!("{:#}", text.parse::<TmpfsSize>().unwrap_err());
        assert_eq!(size("64m").unwrap(), "size=64m");
        assert_eq!(size("2G").unwrap(), "size=2g");
        assert_eq!(size("4096").unwrap(), "size=4096");
        assert_eq!(size("25%").unwrap(), "size=25%");
        assert_eq!(size("100%").unwrap(), "size=100%");
        assert_eq!(err(""), "empty (expected N, Nk, Nm, Ng or N% of memory)");
        assert_eq!(
            err("0"),
            "'0' is not a size (expected N, Nk, Nm, Ng or N% of memory)"
        );
        assert_eq!(
            err("0k"),
            "'0k' is not a size (expected N, Nk, Nm, Ng or N% of memory)"
        );
        assert_eq!(err("0%"), "'0%': a share of memory is 1% to 100%");
        assert_eq!(err("101%"), "'101%': a share of memory is 1% to 100%");
        assert!(err("%").contains("is not a size"));
        assert!(err("m").contains("is not a size"));
        assert!(err("5t").contains("is not a size"));
        assert!(err("+5m").contains("is not a size"));
        assert!(err("20000000000g").contains("is not a size"));
        assert!(err("1\x1b[2J").contains("\\e"), "{}", err("1\x1b[2J"));
    }

    /// A tree under /tmp with links of every kind that could lead out of it, and what each
    /// path must resolve to, as a path relative to the tree (None: must fail).
    fn hostile_tree() -> (PathBuf, Vec<(&'static str, Option<&'static str>)>) {
        let base = std::env::temp_dir().join(format!("contain-mount-test.{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        for dir in ["root/real/sub", "root/tmp", "outside"] {
            fs::create_dir_all(base.join(dir)).unwrap();
        }
        fs::write(root.join("file"), "").unwrap();
        for (link, target) in [
            ("abs", "/real"),
            ("rel", "real/sub"),
            ("up", "../../../outside"),
            ("upreal", "../../real"),
            ("dotdot", "real/sub/../../.."),
            ("missing", "/nowhere"),
            ("tofile", "/file"),
            ("loop", "loop"),
            ("magic", "/proc/self/root"),
            ("chain", "abs/sub"),
        ] {
            symlink(target, root.join(link)).unwrap();
        }
        symlink(base.join("outside"), root.join("tmp/host")).unwrap();
        let cases = vec![
            ("abs", Some("real")),
            ("rel", Some("real/sub")),
            ("up", None),
            ("upreal", Some("real")),
            ("real/../upreal/sub", Some("real/sub")),
            ("missing", None),
            ("tofile", Some("file")),
            ("tofile/x", None),
            ("loop", None),
            ("magic", None),
            ("chain", Some("real/sub")),
            ("tmp/host", None),
            ("/../../real", Some("real")),
            ("", Some("")),
        ];
        (base, cases)
    }

    fn identity(path: &Path) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(path).unwrap();
        (meta.dev(), meta.ino())
    }

    #[test]
    fn links_resolve_inside_the_root_with_openat2_and_without() {
        let (base, cases) = hostile_tree();
        let root_path = base.join("root");
        let root = nix::fcntl::open(&root_path, OFlag::O_PATH, Mode::empty()).unwrap();
        for (path, expected) in cases {
            for (how, found) in [
                ("openat2", resolve_in_root(root.as_fd(), path, false)),
                ("walk", walk_in_root(root.as_fd(), path, false)),
            ] {
                match (found, expected) {
                    (Ok(fd), Some(want)) => {
                        let got = fstat(&fd).unwrap();
                        assert_eq!(
                            (got.st_dev, got.st_ino),
                            identity(&root_path.join(want)),
                            "{how}: {path} resolved elsewhere than {want}"
                        );
                    }
                    (Err(_), None) => {}
                    (found, _) => panic!("{how}: {path}: {found:?}, expected {expected:?}"),
                }
            }
        }
        // "dotdot" is the root itself: resolvable, so Rootfs::mount_point refuses it by identity.
        for fd in [
            resolve_in_root(root.as_fd(), "dotdot", true).unwrap(),
            walk_in_root(root.as_fd(), "dotdot", true).unwrap(),
        ] {
            let got = fstat(&fd).unwrap();
            assert_eq!((got.st_dev, got.st_ino), identity(&root_path));
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn reads_gid_map_lines() {
        let map = "         0       1001          1\n         1     100000      65536\n";
        assert!(gid_mapped(map, 5));
        assert!(gid_mapped(map, 0));
        assert!(!gid_mapped(map, 65537));
        assert!(!gid_mapped("0 1001 1\n", 5));
    }
}
