//! Layered roots: the container's `/` as an overlayfs over read-only trees, with the writable
//! layer on a tmpfs (gone when the container ends) or kept in a state directory.
//!
//! The supervisor checks and locks everything with [`Layers::prepare`] before any namespace
//! exists, so that bad input leaves nothing behind. The child that sets the container up then
//! mounts the overlay with [`Layers::mount`], in the mount namespace whose mounts the
//! container gets locked (see `NsChild::spawn_locked`), where overlayfs is allowed to an
//! unprivileged user from Linux 5.11 (with `userxattr`: the overlay's own attributes go in
//! the `user.overlay.*` namespace, which the container's root may write).
//!
//! Every layer is handed to the kernel as `/proc/self/fd/N` of a descriptor opened beforehand:
//! paths holding `,` or `:` need no escaping, and DIR can be covered by the tmpfs of the
//! writable layer and still be the lowest-but-one layer.
//!
//! DIR = `/` is the host's own system. The kernel refuses a lower layer with file systems
//! mounted below it, which `/` always has, so the root is a fresh tmpfs with one overlay per
//! top-level directory, fresh /tmp and /run, and proc, sys and dev mounted as for any root.
//!
//! It must not change DIR or a layer: only the writable layer (a tmpfs, or STATE's upper/ and
//! work/) is written, and all its checks come before a namespace exists.

use crate::mount::{self, fd_path, open_dir, Rootfs, TmpfsSize};
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The first Linux release that mounts overlayfs in a user namespace.
const FIRST_KERNEL: (u32, u32) = (5, 11);

/// Directories of the host's root that the sandbox gets fresh, not from the host.
const FRESH: [&str; 5] = ["proc", "sys", "dev", "tmp", "run"];

/// The default size of the temporary writable layer (`--tmp-overlay`, the host sandbox's
/// too): a quarter of memory, as systemd-nspawn gives a volatile root.
pub const TMP_LAYER_SIZE: &str = "25%";

/// The host sandbox's root tmpfs, which holds only mount points, links and the files bound
/// onto: systemd's size for a tmpfs of little or no use.
const SANDBOX_ROOT_SIZE: &str = "size=4m,nr_inodes=1k";

/// The host sandbox's fresh /tmp and /run: a tenth of memory each, as systemd-nspawn gives its
/// nested tmpfs mounts.
const SANDBOX_TMP_SIZE: &str = "size=10%";

/// Where the writable layer lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upper {
    /// A tmpfs of the container's own: every change is gone when it ends (--tmp-overlay).
    Temporary,
    /// `upper` and `work` in this state directory, kept between runs (--overlay STATE).
    Kept(PathBuf),
}

/// The layers of a container's root: DIR on top of `lower` (listed bottom first), and the
/// writable layer above them all.
pub struct Layers {
    pub upper: Upper,
    /// Read-only layers under DIR, the first one lowest (--layer, in the order given).
    pub lower: Vec<PathBuf>,
    /// The size of a temporary writable layer's tmpfs ([`Upper::Temporary`]).
    pub tmp_size: TmpfsSize,
    /// Held from [`Layers::prepare`] until the supervisor ends: one container per STATE.
    lock: Option<Flock<fs::File>>,
    /// Who each layer (as `lower`) and STATE's upper and work are, seen in
    /// [`Layers::prepare`]: the container opens them again by path, and takes them only if
    /// they are still those.
    lower_ids: Vec<(u64, u64)>,
    state_ids: Option<StateIds>,
}

/// Who STATE's `upper` and `work` are.
#[derive(Clone, Copy)]
struct StateIds {
    upper: (u64, u64),
    work: (u64, u64),
}

impl Layers {
    /// The layers, a temporary writable layer of [`TMP_LAYER_SIZE`].
    pub fn new(upper: Upper, lower: Vec<PathBuf>) -> Layers {
        Layers {
            upper,
            lower,
            tmp_size: TmpfsSize::default_layer(),
            lock: None,
            lower_ids: Vec::new(),
            state_ids: None,
        }
    }

    /// The same with a temporary writable layer of `size`, when given.
    pub fn with_tmp_size(mut self, size: Option<TmpfsSize>) -> Layers {
        if let Some(size) = size {
            self.tmp_size = size;
        }
        self
    }

    /// Checks the layers against `root` (DIR, absolute and checked already) and takes the
    /// state directory for this process: every path an existing directory, no layer inside
    /// another, none with file systems mounted below it (the kernel would refuse it), STATE
    /// neither inside DIR nor around it, and no other container on STATE. Runs before anything
    /// starts; the paths become absolute.
    ///
    /// `container_root` is container root's host uid and gid, when mapped: as root, the
    /// caller is not container root (see the default maps), and STATE's `upper` and `work`,
    /// which the overlay writes as container root, are given to it when contain makes them.
    ///
    /// STATE is the caller's: the directory itself, not a symbolic link to one, owned by the
    /// caller or container root. Everything in it is reached from it without following links
    /// and checked before use: `lock` a file of its own (no link, hard or symbolic), `upper`
    /// and `work` directories. Nothing else is changed.
    pub fn prepare(&mut self, root: &Path, container_root: Option<(u32, u32)>) -> Result<()> {
        let host = root == Path::new("/");
        let mut named: Vec<(String, PathBuf)> = vec![("DIR".into(), root.to_path_buf())];
        for layer in &mut self.lower {
            *layer = checked_dir("--layer", layer)?;
            let id = mount::open_dir_without_links(layer)
                .and_then(|fd| mount::identity(&fd))
                .map_err(|e| anyhow!("--layer {}: {}", layer.display(), e.desc()))?;
            self.lower_ids.push(id);
            named.push((format!("--layer {}", layer.display()), layer.clone()));
        }
        let mut state_dir = None;
        if let Upper::Kept(state) = &mut self.upper {
            let (path, dir) = open_state(state)?;
            *state = path;
            named.push((format!("--overlay {}", state.display()), state.clone()));
            state_dir = Some(dir);
        }
        for (i, (a_name, a)) in named.iter().enumerate() {
            for (b_name, b) in &named[i + 1..] {
                if a == b {
                    bail!("{b_name}: the same directory as {a_name}");
                }
                let hint = if host {
                    " (the host's root takes --tmp-overlay alone)"
                } else {
                    ""
                };
                if b.starts_with(a) {
                    bail!("{b_name}: inside {a_name} {}{hint}", a.display());
                }
                if a.starts_with(b) {
                    bail!("{b_name}: {a_name} {} is inside it", a.display());
                }
            }
        }
        if !host {
            let mounts = mount_points()?;
            for (name, layer) in &named[..1 + self.lower.len()] {
                if let Some(below) = mounts.iter().find(|m| *m != layer && m.starts_with(layer)) {
                    bail!(
                        "{name}: {} is a mount point below it, and overlayfs takes no layer \
                         with file systems mounted below it",
                        below.display()
                    );
                }
            }
        }
        if let (Upper::Kept(state), Some(dir)) = (&self.upper, state_dir) {
            check_state_owner(state, &dir, container_root)?;
            check_state_entries(state, &dir)?;
            self.lock = Some(lock_state(state, &dir, container_root)?);
            let upper = state_part(state, &dir, "upper", container_root)?;
            let work = state_part(state, &dir, "work", container_root)?;
            self.state_ids = Some(StateIds { upper, work });
        }
        Ok(())
    }

    /// Mounts the layered root in the setup's new mount namespace (made private here) and
    /// returns it, ready for proc, sys and dev. `root` is DIR, as given to [`Layers::prepare`].
    pub fn mount(&self, root: &Path) -> Result<Rootfs> {
        mount::make_private()?;
        if root == Path::new("/") {
            return host_sandbox(&self.tmp_size);
        }
        // DIR is the working directory (the container starts there), reached so even where
        // container root may not walk the path to it; opened before anything covers it.
        let mut lowers = vec![open_dir(Path::new("."))?];
        for (layer, id) in self.lower.iter().zip(&self.lower_ids).rev() {
            lowers.push(open_same_dir("--layer", layer, *id)?);
        }
        let (upper, work) = match &self.upper {
            Upper::Temporary => {
                // The tmpfs goes over DIR itself, out of sight under the overlay mounted on
                // top of it: no directory outside DIR is needed.
                let size = [
                    ("mode", Some("0700")),
                    ("size", Some(self.tmp_size.as_str())),
                ];
                let tmp = mount::new_detached("tmpfs", &size)
                    .map_err(|e| anyhow!("mounting a tmpfs on {}: {}", root.display(), e.desc()))?;
                let upper = make_dir_at(&tmp, "upper", 0o755)?;
                copy_owner_and_mode(&fd_path(&lowers[0]), &fd_path(&upper))?;
                let work = make_dir_at(&tmp, "work", 0o700)?;
                mount::attach_on_working_directory(&tmp)
                    .map_err(|e| anyhow!("mounting a tmpfs on {}: {}", root.display(), e.desc()))?;
                (upper, work)
            }
            Upper::Kept(state) => {
                let ids = self.state_ids.context("STATE was not prepared")?;
                let upper = open_same_dir("--overlay", &state.join("upper"), ids.upper)?;
                let work = open_same_dir("--overlay", &state.join("work"), ids.work)?;
                copy_owner_and_mode(&fd_path(&lowers[0]), &fd_path(&upper))?;
                (upper, work)
            }
        };
        let options = overlay_options(&lowers, &upper, &work);
        let options: Vec<(&str, Option<&str>)> =
            options.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        let merged =
            mount::new_detached("overlay", &options).map_err(|errno| refused(root, errno))?;
        mount::attach_on_working_directory(&merged).map_err(|errno| refused(root, errno))?;
        Ok(Rootfs::from_mount(root, merged))
    }
}

/// Opens `path` again, a directory [`Layers::prepare`] saw as `id`, without following links;
/// refuses it if it is another directory now.
fn open_same_dir(option: &str, path: &Path, id: (u64, u64)) -> Result<OwnedFd> {
    let fd = mount::open_dir_without_links(path)
        .map_err(|e| anyhow!("{option}: {}: {}", path.display(), e.desc()))?;
    if mount::identity(&fd)? != id {
        bail!(
            "{option}: {}: another directory than the one checked at the start (renamed or \
             replaced meanwhile)",
            path.display()
        );
    }
    Ok(fd)
}

/// True if the host `uid` owns what contain may use as the caller's: the caller itself, or
/// container root (`container_root`).
fn owned_by_us(uid: u32, container_root: Option<(u32, u32)>) -> bool {
    uid == nix::unistd::geteuid().as_raw() || container_root.is_some_and(|(root, _)| root == uid)
}

/// Who may own STATE and what is in it, for messages.
fn expected_owners(container_root: Option<(u32, u32)>) -> String {
    let caller = nix::unistd::geteuid();
    match container_root {
        Some((root, _)) if root != caller.as_raw() => {
            format!("uid {caller} (yours) or {root} (container root's)")
        }
        _ => format!("uid {caller} (yours)"),
    }
}

/// Opens STATE (`given`): the directory itself, not a symbolic link (links on the way to it
/// are the caller's own path). Returns its absolute path and the open directory, from which
/// everything in it is reached.
fn open_state(given: &Path) -> Result<(PathBuf, OwnedFd)> {
    let shown = given.display();
    let named = given
        .file_name()
        .filter(|_| !given.ends_with("..") && !given.ends_with("."));
    let (path, dir) = match named {
        // "/", ".", "..": no symbolic link as their last part.
        None => {
            let path = fs::canonicalize(given).with_context(|| format!("--overlay {shown}"))?;
            let dir = nix::fcntl::open(
                &path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            );
            (path, dir)
        }
        Some(name) => {
            let parent = match given.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let parent = fs::canonicalize(parent).with_context(|| format!("--overlay {shown}"))?;
            let parent_dir = open_dir(&parent).with_context(|| format!("--overlay {shown}"))?;
            let dir = nix::fcntl::openat(
                &parent_dir,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            );
            (parent.join(name), dir)
        }
    };
    let dir = match dir {
        Ok(dir) => dir,
        Err(Errno::ELOOP) => bail!(
            "--overlay {shown}: a symbolic link; give the state directory itself \
             (contain follows no link to the directories it changes)"
        ),
        Err(Errno::ENOTDIR) if fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink()) => {
            bail!(
                "--overlay {shown}: a symbolic link; give the state directory itself \
                 (contain follows no link to the directories it changes)"
            )
        }
        Err(e) => bail!("--overlay {shown}: {}", e.desc()),
    };
    Ok((path, dir))
}

/// Refuses, before anything is made in it, a STATE whose lock, upper or work is there and
/// is not what contain makes: a symbolic link, or a lock that is no file or an upper or work
/// that is no directory. (Each is checked again as it is opened.)
fn check_state_entries(state: &Path, dir: &OwnedFd) -> Result<()> {
    for (name, kind) in [
        ("lock", SFlag::S_IFREG),
        ("upper", SFlag::S_IFDIR),
        ("work", SFlag::S_IFDIR),
    ] {
        let found = match nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT,
            Err(Errno::ENOENT) => continue,
            Err(e) => bail!("{}: {}", state.join(name).display(), e.desc()),
        };
        if found == SFlag::S_IFLNK {
            bail!(
                "--overlay {}: {} is a symbolic link; contain follows no link in STATE",
                state.display(),
                state.join(name).display()
            );
        }
        if found != kind {
            bail!(
                "--overlay {}: {} is not a {}",
                state.display(),
                state.join(name).display(),
                if kind == SFlag::S_IFDIR {
                    "directory"
                } else {
                    "file"
                }
            );
        }
    }
    Ok(())
}

/// Refuses a STATE (open on `dir`) owned by anyone but the caller or container root.
fn check_state_owner(
    state: &Path,
    dir: &OwnedFd,
    container_root: Option<(u32, u32)>,
) -> Result<()> {
    let owner = nix::sys::stat::fstat(dir)?.st_uid;
    if !owned_by_us(owner, container_root) {
        bail!(
            "--overlay {}: owned by uid {owner}; a state directory must be owned by {}",
            state.display(),
            expected_owners(container_root)
        );
    }
    Ok(())
}

/// Makes STATE's `name` (upper or work) if missing and checks it: a directory, reached without
/// following a link. One contain made, as root, is given to container root, which the overlay
/// writes as. Returns who it is.
fn state_part(
    state: &Path,
    dir: &OwnedFd,
    name: &str,
    container_root: Option<(u32, u32)>,
) -> Result<(u64, u64)> {
    let path = state.join(name);
    let made = match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) => true,
        Err(Errno::EEXIST) => false,
        Err(e) => bail!("creating {}: {}", path.display(), e.desc()),
    };
    let part = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP | Errno::ENOTDIR => anyhow!(
            "--overlay {}: {}: not a directory of its own (a symbolic link or a file); \
             contain follows no link in STATE",
            state.display(),
            path.display()
        ),
        e => anyhow!("opening {}: {}", path.display(), e.desc()),
    })?;
    // Its owner is not checked: the container gives upper DIR's owner, and nobody else can
    // put a directory into a STATE of the caller's or container root's.
    let stat = nix::sys::stat::fstat(&part)?;
    if let (true, Some((uid, gid))) = (made, container_root) {
        if nix::unistd::geteuid().is_root() && uid != 0 {
            nix::unistd::fchown(&part, Some(uid.into()), Some(gid.into()))
                .with_context(|| format!("chown {}", path.display()))?;
        }
    }
    Ok((stat.st_dev, stat.st_ino))
}

/// `path`, absolute, checked to be a directory; `option` names it in errors.
fn checked_dir(option: &str, path: &Path) -> Result<PathBuf> {
    let absolute =
        fs::canonicalize(path).with_context(|| format!("{option} {}", path.display()))?;
    if !absolute.is_dir() {
        bail!("{option} {}: Not a directory", path.display());
    }
    Ok(absolute)
}

/// Takes STATE for this process with an flock on STATE/lock, which holds the PID of the
/// supervisor holding it, for the refusal of the next one to name. The lock is opened in the
/// open STATE `dir` without following a link, and is used only if it is a file of its own
/// (one name: a hard link could be any file of its owner's) owned by the caller or container
/// root; it is emptied only once locked.
fn lock_state(
    state: &Path,
    dir: &OwnedFd,
    container_root: Option<(u32, u32)>,
) -> Result<Flock<fs::File>> {
    let path = state.join("lock");
    let fd = nix::fcntl::openat(
        dir,
        "lock",
        OFlag::O_RDWR
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| match e {
        Errno::ELOOP => anyhow!(
            "--overlay {}: {} is a symbolic link; contain follows no link in STATE",
            state.display(),
            path.display()
        ),
        e => anyhow!(
            "--overlay {}: opening {}: {}",
            state.display(),
            path.display(),
            e.desc()
        ),
    })?;
    let stat = nix::sys::stat::fstat(&fd)?;
    let regular = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
    if !regular || stat.st_nlink != 1 || !owned_by_us(stat.st_uid, container_root) {
        bail!(
            "--overlay {}: {} is not a lock file of contain's (a file with one name, owned by \
             {})",
            state.display(),
            path.display(),
            expected_owners(container_root)
        );
    }
    let file = fs::File::from(fd);
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = match pid.trim() {
                "" => "another container".to_string(),
                pid => format!("the container of contain PID {pid}"),
            };
            bail!(
                "--overlay {}: in use by {holder} (two containers on one state directory \
                 would corrupt it)",
                state.display()
            );
        }
        Err((_, errno)) => {
            return Err(anyhow!(
                "--overlay {}: locking {}: {}",
                state.display(),
                path.display(),
                errno.desc()
            ));
        }
    };
    let pid = std::process::id();
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| writeln!(lock, "{pid}"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(lock)
}

/// Every mount point of this process's mount namespace.
fn mount_points() -> Result<Vec<PathBuf>> {
    let text =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(crate::mount::unescape_mountinfo(field)))
        .collect())
}

fn make_dir(path: &Path, mode: u32) -> Result<()> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).with_context(|| format!("creating {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Gives `copy` the owner and mode of `original` (owners that are not mapped here excepted):
/// the merged root of an overlay shows its upper root's, and should show DIR's.
fn copy_owner_and_mode(original: &Path, copy: &Path) -> Result<()> {
    let meta = fs::metadata(original).with_context(|| format!("{}", original.display()))?;
    fs::set_permissions(copy, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .with_context(|| format!("{}", copy.display()))?;
    let overflow = fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65534);
    let mapped = |id: u32| (id != overflow).then_some(id);
    std::os::unix::fs::chown(copy, mapped(meta.uid()), mapped(meta.gid()))
        .with_context(|| format!("chown {}", copy.display()))
}

/// Mounts the overlay of `lowers` (top first) under `upper` on `target`.
fn overlay(target: &Path, lowers: &[OwnedFd], upper: &OwnedFd, work: &OwnedFd) -> Result<()> {
    let options: Vec<String> = overlay_options(lowers, upper, work)
        .iter()
        .map(|(key, value)| match value {
            Some(value) => format!("{key}={value}"),
            None => key.to_string(),
        })
        .collect();
    let options = options.join(",");
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|errno| refused(target, errno))
}

/// The overlay's options: `lowers` (top first) under `upper`, through their descriptors.
fn overlay_options(
    lowers: &[OwnedFd],
    upper: &OwnedFd,
    work: &OwnedFd,
) -> Vec<(&'static str, Option<String>)> {
    let lowerdir: Vec<String> = lowers
        .iter()
        .map(|fd| fd_path(fd).display().to_string())
        .collect();
    vec![
        ("lowerdir", Some(lowerdir.join(":"))),
        ("upperdir", Some(fd_path(upper).display().to_string())),
        ("workdir", Some(fd_path(work).display().to_string())),
        ("userxattr", None),
    ]
}

/// Creates the directory `name` (mode `mode`) in the directory open on `dir`, and opens it.
fn make_dir_at(dir: &OwnedFd, name: &str, mode: u32) -> Result<OwnedFd> {
    nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode))
        .with_context(|| format!("creating {name}"))?;
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {name}"))
}

/// The one line for an overlay the kernel refused: the likely reason, and the kernel it takes.
fn refused(target: &Path, errno: Errno) -> anyhow::Error {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    let why = match errno {
        _ if kernel_older_than(release, FIRST_KERNEL) => "this kernel is too old",
        Errno::EINVAL => {
            "a file system among the layers cannot take part in an overlay: /proc or /sys \
             as a layer, or STATE on overlayfs, NFS or FUSE, for example"
        }
        Errno::EPERM => "this kernel does not allow it in a user namespace",
        _ => "the kernel log may say more",
    };
    anyhow!(
        "mounting the overlay on {}: the kernel refused it: {}: {why} (overlayfs without \
         privilege needs Linux {}.{} or later; this is {release})",
        target.display(),
        errno.desc(),
        FIRST_KERNEL.0,
        FIRST_KERNEL.1
    )
}

/// True if `release` (e.g. "5.10.0-23-amd64") is older than `major.minor`.
fn kernel_older_than(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    found < (major, minor)
}

/// The host's own system as the container's root: on a fresh tmpfs, each top-level directory
/// of `/` an overlay with its writable layer on a second tmpfs (of `size`), symlinks copied,
/// proc, sys, dev, tmp and run fresh. A directory with file systems mounted below it cannot be
/// a layer: it is bound read-only instead, with everything below it.
fn host_sandbox(size: &TmpfsSize) -> Result<Rootfs> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir("/")
        .context("reading /")?
        .collect::<std::io::Result<_>>()
        .context("reading /")?;
    entries.sort_by_key(|e| e.file_name());
    let mounts = mount_points()?;

    // The staging area: /tmp of the host is not the container's anyway.
    let staging = Path::new("/tmp");
    mount::tmpfs(
        staging,
        MsFlags::empty(),
        &format!("mode=0700,{}", size.option()),
    )?;
    let (uppers, works, root) = (
        staging.join("upper"),
        staging.join("work"),
        staging.join("root"),
    );
    for dir in [&uppers, &works, &root] {
        make_dir(dir, 0o755)?;
    }
    mount::tmpfs(
        &root,
        MsFlags::empty(),
        &format!("mode=0755,{SANDBOX_ROOT_SIZE}"),
    )?;

    for entry in entries {
        let name = entry.file_name();
        let host = Path::new("/").join(&name);
        let inside = root.join(&name);
        if FRESH.iter().any(|fresh| name == *fresh) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&host).with_context(|| format!("{}", host.display()))?;
            symlink(&target, &inside).with_context(|| format!("creating {}", inside.display()))?;
        } else if !meta.is_dir() {
            fs::File::create(&inside).with_context(|| format!("creating {}", inside.display()))?;
            mount::bind(&host, &inside)?;
            mount::remount_read_only(&inside)?;
        } else if mounts.iter().any(|m| *m != host && m.starts_with(&host)) {
            make_dir(&inside, 0o755)?;
            mount::bind(&host, &inside)?;
            let below: Vec<PathBuf> = mount_points()?
                .into_iter()
                .filter(|m| m.starts_with(&inside))
                .collect();
            for point in below {
                match mount::remount_read_only(&point) {
                    // Out of reach for the container's root (e.g. below a 0700 directory of
                    // the host's root): then out of reach for everything inside, too.
                    Err(e) if e.root_cause().downcast_ref() == Some(&Errno::EACCES) => {}
                    result => result?,
                }
            }
        } else {
            make_dir(&inside, 0o755)?;
            let (upper, work) = (uppers.join(&name), works.join(&name));
            make_dir(&upper, 0o755)?;
            make_dir(&work, 0o700)?;
            fs::set_permissions(&upper, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .with_context(|| format!("{}", upper.display()))?;
            overlay(
                &inside,
                &[open_dir(&host)?],
                &open_dir(&upper)?,
                &open_dir(&work)?,
            )?;
        }
    }
    for (name, mode) in [("tmp", "1777"), ("run", "0755")] {
        let dir = root.join(name);
        make_dir(&dir, 0o755)?;
        let options = format!("mode={mode},{SANDBOX_TMP_SIZE}");
        mount::tmpfs(&dir, MsFlags::MS_NOSUID | MsFlags::MS_NODEV, &options)?;
    }
    Rootfs::open(&root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_releases() {
        assert!(kernel_older_than("5.10.0-23-amd64", (5, 11)));
        assert!(kernel_older_than("4.19.0", (5, 11)));
        assert!(!kernel_older_than("5.11.0", (5, 11)));
        assert!(!kernel_older_than("6.1.0-13-amd64", (5, 11)));
        assert!(!kernel_older_than("6.18.44-fc-v657", (5, 11)));
    }
}
