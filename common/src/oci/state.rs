//! The state directory: one directory per container under `--root`, holding what the other
//! commands need (`state.json`) and, while the container waits for `start`, the socket that
//! lets it go (`start.sock`). Every command on an ID holds the directory's lock (flock) while
//! it looks at or changes the container, so concurrent commands on one ID take turns.

use super::time::rfc3339;
use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The state file in a container's directory.
const STATE_FILE: &str = "state.json";
/// The socket the container's process listens on until `start`.
pub const START_SOCKET: &str = "start.sock";

/// The OCI runtime-spec version the state and `features` speak.
pub const OCI_VERSION: &str = "1.0.2";

/// `--root`'s default: /run/contain-oci for root, $XDG_RUNTIME_DIR/contain-oci for a user,
/// root of a user namespace (rootless podman runs its runtime so) included, as crun does.
pub fn default_root() -> PathBuf {
    let real_root = nix::unistd::geteuid().is_root()
        && crate::idmap::is_initial(&crate::idmap::own_namespace(crate::idmap::IdKind::User));
    if !real_root {
        if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("contain-oci");
        }
        // As crun: the user's runtime directory that logind would have named.
        if !nix::unistd::geteuid().is_root() {
            return PathBuf::from(format!("/run/user/{}/contain-oci", nix::unistd::geteuid()));
        }
    }
    PathBuf::from("/run/contain-oci")
}

/// Checks a container ID: what engines use (letters, digits, `_`, `-`, `.`, `+`), and never a
/// name that could leave the state root.
pub fn check_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.+".contains(&b));
    if !valid {
        bail!(
            "invalid container ID '{}': use letters, digits, '_', '-', '.' and '+'",
            crate::errors::printable(id)
        );
    }
    Ok(())
}

/// What `create` records for the other commands. The first fields are runc's `state` output.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Saved {
    pub oci_version: String,
    pub id: String,
    /// The container's first process, as the host sees it.
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The process's start time (field 22 of /proc/PID/stat): its PID alone could name
    /// another process once it has ended.
    pub start_time: u64,
    /// The hooks that run after `delete`, with their state.
    #[serde(default)]
    pub poststop: Vec<oci_spec::runtime::Hook>,
    /// The hooks that run after `start`.
    #[serde(default)]
    pub poststart: Vec<oci_spec::runtime::Hook>,
    /// The cgroups the process was placed in, removed by `delete`.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// The scope systemd made for the container (`--systemd-cgroup`), stopped by `delete`.
    #[serde(default)]
    pub systemd_scope: Option<SystemdScope>,
}

/// A scope of systemd's holding a container: its unit, and whose manager made it (the
/// system's, or the caller's user manager).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemdScope {
    pub unit: String,
    pub user_manager: bool,
}

/// The status of a container, as the OCI state names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// A container's directory, locked for as long as this value lives.
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
    dir: OwnedFd,
    lock: Option<Flock<File>>,
}

impl ContainerDir {
    /// Makes the directory of a new container under `root` (made 0700 when missing) and locks
    /// it. An existing one is refused: IDs are unique.
    pub fn create(root: &Path, id: &str) -> Result<ContainerDir> {
        check_id(id)?;
        make_root(root)?;
        let path = root.join(id);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container \"{id}\" already exists")
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        let dir = Self::lock(root, id, path);
        if dir.is_err() {
            let _ = std::fs::remove_dir_all(root.join(id));
        }
        dir
    }

    /// Opens and locks the directory of an existing container; "does not exist", the words
    /// engines look for, when there is none.
    pub fn open(root: &Path, id: &str) -> Result<ContainerDir> {
        check_id(id)?;
        let path = root.join(id);
        let dir = Self::lock(root, id, path).map_err(|e| {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                || e.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::ENOENT)
            {
                anyhow!("container \"{id}\" does not exist")
            } else {
                e
            }
        })?;
        // A directory without state is a create still under way, or one that failed.
        if !dir.path.join(STATE_FILE).exists() {
            bail!("container \"{id}\" does not exist");
        }
        Ok(dir)
    }

    fn lock(_root: &Path, id: &str, path: PathBuf) -> Result<ContainerDir> {
        let dir = nix::fcntl::open(
            &path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )?;
        let file = File::from(dir.try_clone()?);
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(ContainerDir {
            id: id.to_string(),
            path,
            dir,
            lock: Some(lock),
        })
    }

    /// The descriptor numbers a forked container process must close at once: the lock is held
    /// for as long as any copy of it stays open.
    pub fn descriptors(&self) -> Vec<i32> {
        let mut fds = vec![self.dir.as_raw_fd()];
        if let Some(lock) = &self.lock {
            fds.push(lock.as_raw_fd());
        }
        fds
    }

    /// A path to `name` in the directory that stays short (a unix socket's path may not exceed
    /// 107 bytes) and cannot be redirected by a rename of the directory.
    pub fn short_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", self.dir.as_raw_fd()))
    }

    /// Writes the state atomically (a new file renamed over the old one).
    pub fn save(&self, saved: &Saved) -> Result<()> {
        let text = serde_json::to_vec(saved).context("encoding the state")?;
        write_atomically(&self.path.join(STATE_FILE), &text)
    }

    pub fn load(&self) -> Result<Saved> {
        let path = self.path.join(STATE_FILE);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// The status: created while the process waits for `start` (its socket is there), running
    /// while it lives, stopped once it has ended (a zombie has ended).
    pub fn status(&self, saved: &Saved) -> Status {
        if !process_alive(saved.pid, saved.start_time) {
            Status::Stopped
        } else if self.path.join(START_SOCKET).exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// Removes the directory and everything in it.
    pub fn remove(mut self) -> Result<()> {
        std::fs::remove_dir_all(&self.path)
            .with_context(|| format!("removing {}", self.path.display()))?;
        drop(self.lock.take());
        Ok(())
    }
}

/// The state as `state` prints it (runc's fields).
pub fn state_json(saved: &Saved, status: Status) -> serde_json::Value {
    let mut state = serde_json::json!({
        "ociVersion": saved.oci_version,
        "id": saved.id,
        "pid": if status == Status::Stopped { 0 } else { saved.pid },
        "status": status.name(),
        "bundle": saved.bundle,
        "rootfs": saved.rootfs,
        "created": saved.created,
        "owner": saved.owner,
    });
    if !saved.annotations.is_empty() {
        state["annotations"] = serde_json::json!(saved.annotations);
    }
    state
}

/// The state given to hooks on stdin (the runtime-spec's fields).
pub fn hook_state(saved: &Saved, status: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": saved.oci_version,
        "id": saved.id,
        "pid": saved.pid,
        "status": status,
        "bundle": saved.bundle,
        "annotations": saved.annotations,
    })
}

impl Saved {
    pub fn new(
        id: &str,
        pid: i32,
        bundle: &Path,
        rootfs: &Path,
        annotations: HashMap<String, String>,
    ) -> Result<Saved> {
        Ok(Saved {
            oci_version: OCI_VERSION.into(),
            id: id.into(),
            pid,
            bundle: bundle.into(),
            rootfs: rootfs.into(),
            created: rfc3339(SystemTime::now()),
            owner: owner_name(),
            annotations,
            start_time: start_time(pid)
                .ok_or_else(|| anyhow!("the container's process {pid} ended during create"))?,
            poststop: Vec::new(),
            poststart: Vec::new(),
            cgroups: Vec::new(),
            systemd_scope: None,
        })
    }
}

/// The start time of `pid` (field 22 of /proc/PID/stat, in clock ticks since boot), if it
/// lives and has not ended (a zombie has ended).
pub fn start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after it.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// True if the process `pid` that started at `start` still lives.
pub fn process_alive(pid: i32, start: u64) -> bool {
    pid > 0 && start_time(pid) == Some(start)
}

/// The name of the effective user, from /etc/passwd ("" when it has none).
fn owner_name() -> String {
    let uid = nix::unistd::geteuid().as_raw().to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
            })
        })
        .unwrap_or_default()
}

/// Makes the state root (0700, only its owner needs it) with its missing parents.
fn make_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("creating the state directory {}", root.display()))
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so that a reader sees the old file or the whole new one (pid files are read so).
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let written = File::options()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| file.write_all(contents))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// True if `root` holds a container `id` (its state is saved).
pub fn exists(root: &Path, id: &str) -> bool {
    root.join(id).join(STATE_FILE).exists()
}

/// The containers under `root`, by ID (a missing root holds none).
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", root.display())),
    };
    let mut ids: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|id| check_id(id).is_ok() && exists(root, id))
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_root() {
        for bad in ["", ".", "..", "a/b", "../x", "a\nb", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "0123abcdef", "my_ctr-1.2+x"] {
            check_id(good).unwrap();
        }
    }

    #[test]
    fn own_start_time_is_read() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
    }
}
