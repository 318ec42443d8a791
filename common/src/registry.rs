//! Names of running containers: `contain --name NAME` registers a container, `inject NAME`
//! finds it, `contain --list` shows what runs.
//!
//! Each user has a directory of entries: $CONTAIN_REGISTRY when set (see [`REGISTRY_VAR`]), else
//! $XDG_RUNTIME_DIR/contain when the caller has a runtime directory of its own, else
//! /tmp/contain-UID; root's is /run/contain. The directory is
//! made mode 0700 and must be the caller's, with that mode, and no symbolic link: every entry is
//! reached through its descriptor with O_NOFOLLOW. An entry is one file, named after the
//! container (or `@PID` for one without a name), holding the supervisor's PID and start time
//! (which tell a live entry from a stale one whose PID was reused), when it started, DIR and
//! the command. Changes are made under an exclusive lock of the directory.
//!
//! The entry goes when the container ends: contain removes it, and the watchdog removes it
//! after a SIGKILL of contain (see watchdog.rs). An entry whose supervisor has ended all the
//! same is stale: it is not listed, and a new container takes its name over.

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use std::ffi::{CString, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why no registry could be made: nowhere to make it (not a refusal of what is there).
#[derive(Debug)]
struct NoPlace(String);

impl std::fmt::Display for NoPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoPlace {}

/// The first field of an entry: what wrote it.
const FORMAT: &str = "contain-entry-1";
/// The largest entry read.
const MAX_ENTRY: u64 = 1 << 20;

/// A running container, as its entry tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// None for a container started without `--name`.
    pub name: Option<String>,
    /// The contain supervisor.
    pub pid: i32,
    /// The supervisor's start time (field 22 of /proc/PID/stat).
    pub start_time: u64,
    /// When the container started, in seconds since the epoch.
    pub since: u64,
    /// The host uid of the supervisor.
    pub uid: u32,
    /// DIR, as contain resolved it.
    pub dir: PathBuf,
    pub command: Vec<String>,
}

/// Checks a name as `--name` takes it: 1 to 64 characters out of letters, digits, `_`, `.`
/// and `-`, starting with a letter or digit (it names a file).
pub fn parse_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !valid {
        return Err(
            "a name has 1 to 64 letters, digits, _, . and -, and starts with a letter or digit"
                .into(),
        );
    }
    Ok(text.to_string())
}

/// The file name of an entry.
fn file_name(name: Option<&str>, pid: i32) -> String {
    match name {
        Some(name) => name.to_string(),
        None => format!("@{pid}"),
    }
}

/// The caller's directory of entries, opened.
pub struct Registry {
    dir: OwnedFd,
    path: PathBuf,
}

/// The environment variable naming the caller's registry directory in place of the default
/// one: for a registry of its own (a test suite run as root, which must leave /run alone).
pub const REGISTRY_VAR: &str = "CONTAIN_REGISTRY";

/// The caller's registry directory's path.
fn own_directory() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(REGISTRY_VAR).filter(|dir| !dir.is_empty()) {
        let dir = PathBuf::from(dir);
        if !dir.is_absolute() {
            bail!(
                "{REGISTRY_VAR}={}: not an absolute path",
                crate::errors::shown_os(dir.as_os_str())
            );
        }
        return Ok(dir);
    }
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        // Root of a user namespace (in a container) may have no /run.
        if Path::new("/run").is_dir() {
            return Ok(PathBuf::from("/run/contain"));
        }
        return Ok(PathBuf::from("/tmp/contain-0"));
    }
    Ok(std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && owned_by(dir, uid.as_raw()))
        .map(|dir| dir.join("contain"))
        .unwrap_or_else(|| PathBuf::from(format!("/tmp/contain-{uid}"))))
}

fn owned_by(dir: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.uid() == uid)
}

impl Registry {
    /// The caller's registry, made if missing (for a container to register in).
    pub fn open() -> Result<Registry> {
        Self::open_at(own_directory()?, true)?.ok_or_else(|| anyhow!("no registry"))
    }

    /// [`Registry::open`] for a container without a name: None where no registry can be made
    /// (no writable place for it, as in a container without /run or /tmp), an error only for
    /// a directory that is there but refused (not the caller's alone, a symbolic link).
    pub fn open_if_possible() -> Result<Option<Registry>> {
        match Self::open_at(own_directory()?, true) {
            Err(e) if e.downcast_ref::<NoPlace>().is_some() => Ok(None),
            other => other,
        }
    }

    /// The caller's registry if it exists (for looking up).
    pub fn open_existing() -> Result<Option<Registry>> {
        Self::open_at(own_directory()?, false)
    }

    fn open_at(path: PathBuf, create: bool) -> Result<Option<Registry>> {
        let shown = || format!("the registry of names {}", path.display());
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => (parent, name),
            _ => bail!("{}: not a directory path", shown()),
        };
        let no_place = |e: Errno| anyhow::Error::new(NoPlace(format!("{}: {}", shown(), e.desc())));
        let parent = nix::fcntl::open(
            parent,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(no_place)?;
        if create {
            match nix::sys::stat::mkdirat(&parent, name, Mode::from_bits_truncate(0o700)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(no_place(e)),
            }
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = match nix::fcntl::openat(&parent, name, flags, Mode::empty()) {
            Ok(dir) => dir,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                bail!("{}: not a directory (a symbolic link?)", shown())
            }
            Err(e) => bail!("{}: {}", shown(), e.desc()),
        };
        let stat = fstat(&dir).map_err(|e| anyhow!("{}: {}", shown(), e.desc()))?;
        let me = nix::unistd::getuid().as_raw();
        if stat.st_uid != me || stat.st_mode & 0o077 != 0 {
            bail!(
                "{}: must be owned by uid {me} with mode 0700 (it is uid {}, mode {:04o})",
                shown(),
                stat.st_uid,
                stat.st_mode & 0o7777
            );
        }
        Ok(Some(Registry { dir, path }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> Result<Flock<OwnedFd>> {
        let dup = self
            .dir
            .try_clone()
            .context("locking the registry of names")?;
        Flock::lock(dup, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow!("locking {}: {}", self.path.display(), e.desc()))
    }

    /// Registers `entry` (whose pid is this process). A live container of the same name is
    /// refused, naming its PID; a stale entry is taken over.
    pub fn register(&self, entry: &Entry) -> Result<Registration> {
        let file = file_name(entry.name.as_deref(), entry.pid);
        let _lock = self.lock()?;
        if let Some(name) = &entry.name {
            if let Some(old) = read_entry(self.dir.as_fd(), &file) {
                if old.is_live() {
                    bail!(
                        "--name {name}: a container of that name runs (supervisor PID {})",
                        old.pid
                    );
                }
            }
        }
        let temporary = format!(".{file}.{}", entry.pid);
        let written = write_new(self.dir.as_fd(), &temporary, &entry.encode()).and_then(|()| {
            nix::fcntl::renameat(&self.dir, temporary.as_str(), &self.dir, file.as_str())
                .map_err(|e| anyhow!("{}", e.desc()))
        });
        if let Err(e) = written {
            let _ = nix::unistd::unlinkat(
                &self.dir,
                temporary.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            bail!("registering in {}: {e}", self.path.display());
        }
        Ok(Registration {
            dir: self.dir.try_clone().context("registering")?,
            file,
            pid: entry.pid,
        })
    }

    /// What removes the entry of this process, named `name` or not, once made.
    pub fn removal(&self, name: Option<&str>) -> Removal {
        let pid = nix::unistd::getpid().as_raw();
        Removal {
            dir: self.dir.as_raw_fd(),
            name: CString::new(file_name(name, pid)).unwrap_or_default(),
            pid,
        }
    }

    /// The live container of `name`.
    pub fn find(&self, name: &str) -> Result<Entry> {
        match read_entry(self.dir.as_fd(), name) {
            Some(entry) if entry.is_live() => Ok(entry),
            _ => bail!("{name}: no container of that name runs"),
        }
    }

    /// Every live container of this registry, oldest first. Stale entries (see the module's
    /// comment) are removed on the way.
    pub fn list(&self) -> Vec<Entry> {
        let lock = self.lock();
        let mut entries = Vec::new();
        for file in entry_names(&self.dir) {
            let Some(entry) = read_entry(self.dir.as_fd(), &file) else {
                continue;
            };
            if entry.is_live() {
                entries.push(entry);
            } else if lock.is_ok() {
                let flags = nix::unistd::UnlinkatFlags::NoRemoveDir;
                let _ = nix::unistd::unlinkat(&self.dir, file.as_str(), flags);
            }
        }
        drop(lock);
        entries.sort_by_key(|e| (e.since, e.pid));
        entries
    }
}

/// The names in a directory that may be entries (not the temporary `.NAME.PID` files).
fn entry_names(dir: &OwnedFd) -> Vec<String> {
    let Ok(dup) = dir.try_clone() else {
        return Vec::new();
    };
    let Ok(mut listing) = nix::dir::Dir::from_fd(dup) else {
        return Vec::new();
    };
    listing
        .iter()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().ok().map(str::to_string))
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// Every live container of every user, for root: root's own registry (/run/contain, or
/// [`REGISTRY_VAR`]'s), and each user's under /run/user/UID/contain and /tmp/contain-UID, read
/// only where the directory, the entry and the supervisor belong to the same uid.
pub fn list_all() -> Vec<Entry> {
    let mut dirs: Vec<PathBuf> = own_directory().into_iter().collect();
    for (base, prefix) in [("/run/user", ""), ("/tmp", "contain-")] {
        let Ok(listing) = std::fs::read_dir(base) else {
            continue;
        };
        for entry in listing.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            if rest.parse::<u32>().is_err() {
                continue;
            }
            let dir = Path::new(base).join(&name);
            dirs.push(if prefix.is_empty() {
                dir.join("contain")
            } else {
                dir
            });
        }
    }
    let mut all = Vec::new();
    for path in dirs {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let Ok(dir) = nix::fcntl::open(path.as_path(), flags, Mode::empty()) else {
            continue;
        };
        let Ok(owner) = fstat(&dir).map(|s| s.st_uid) else {
            continue;
        };
        for file in entry_names(&dir) {
            if let Some(entry) = read_entry(dir.as_fd(), &file) {
                if entry.uid == owner && entry.is_live() {
                    all.push(entry);
                }
            }
        }
    }
    all.sort_by_key(|e| (e.since, e.pid));
    all.dedup_by_key(|e| e.pid);
    all
}

/// Creates `name` in `dir` (mode 0600, O_EXCL, no link followed) holding `contents`.
fn write_new(dir: BorrowedFd<'_>, name: &str, contents: &[u8]) -> Result<()> {
    let fd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| anyhow!("{}", e.desc()))?;
    std::fs::File::from(fd).write_all(contents)?;
    Ok(())
}

/// Reads the entry `file` of `dir`: a regular file, not followed if a link, owned as the
/// directory. None if it is missing or not an entry.
fn read_entry(dir: BorrowedFd<'_>, file: &str) -> Option<Entry> {
    let fd = nix::fcntl::openat(
        dir,
        file,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let stat = fstat(&fd).ok()?;
    let dir_owner = fstat(dir).ok()?.st_uid;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
        || stat.st_uid != dir_owner
    {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_ENTRY)
        .read_to_end(&mut text)
        .ok()?;
    let entry = Entry::decode(&text)?;
    // The file's name is the entry's: a renamed file names nothing.
    (file_name(entry.name.as_deref(), entry.pid) == file).then_some(entry)
}

/// The start time of process `pid` (field 22 of its stat) and whether it has ended (a zombie).
pub fn start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let end = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(end + 2..)?).ok()?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // After the name: state is field 3, start time field 22.
    let ended = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(22 - 3)?.parse().ok()?, ended))
}

impl Entry {
    /// The entry of this process, the supervisor of a container rooted at `dir` running
    /// `command`.
    pub fn of_this_process(
        name: Option<String>,
        dir: &Path,
        command: &[std::ffi::OsString],
    ) -> Entry {
        let pid = nix::unistd::getpid().as_raw();
        Entry {
            name,
            pid,
            start_time: start_time(pid).map_or(0, |(t, _)| t),
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            uid: nix::unistd::getuid().as_raw(),
            dir: dir.to_path_buf(),
            command: command
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        }
    }

    /// True while the supervisor the entry names runs: the same PID with the same start time.
    pub fn is_live(&self) -> bool {
        matches!(start_time(self.pid), Some((t, false)) if t == self.start_time)
    }

    fn encode(&self) -> Vec<u8> {
        let mut fields: Vec<Vec<u8>> = vec![
            FORMAT.into(),
            self.name.clone().unwrap_or_default().into_bytes(),
            self.pid.to_string().into_bytes(),
            self.start_time.to_string().into_bytes(),
            self.since.to_string().into_bytes(),
            self.uid.to_string().into_bytes(),
            self.dir.as_os_str().as_bytes().to_vec(),
        ];
        fields.extend(self.command.iter().map(|a| a.clone().into_bytes()));
        let mut out = Vec::new();
        for field in fields {
            // A NUL inside a field would shift the others: none can hold one (paths and
            // arguments come from C strings), but be sure.
            out.extend(field.into_iter().filter(|&b| b != 0));
            out.push(0);
        }
        out
    }

    fn decode(text: &[u8]) -> Option<Entry> {
        let mut fields = text.strip_suffix(&[0])?.split(|&b| b == 0);
        if fields.next()? != FORMAT.as_bytes() {
            return None;
        }
        let mut text_field = || std::str::from_utf8(fields.next()?).ok().map(str::to_string);
        let name = text_field()?;
        let pid = text_field()?.parse().ok()?;
        let start_time = text_field()?.parse().ok()?;
        let since = text_field()?.parse().ok()?;
        let uid = text_field()?.parse().ok()?;
        let dir = PathBuf::from(OsStr::from_bytes(fields.next()?));
        let command = fields
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Some(Entry {
            name: (!name.is_empty()).then_some(name),
            pid,
            start_time,
            since,
            uid,
            dir,
            command,
        })
    }

    /// The line `contain --list` shows: NAME, PID, since (UTC), DIR, command; control
    /// characters escaped.
    pub fn line(&self, with_uid: bool) -> String {
        let name = self.name.as_deref().unwrap_or("-");
        let uid = if with_uid {
            format!("{:<6} ", self.uid)
        } else {
            String::new()
        };
        let command: Vec<String> = self
            .command
            .iter()
            .map(|a| crate::errors::shown(a.as_bytes()))
            .collect();
        format!(
            "{uid}{:<16} {:>7}  {}  {}  {}",
            crate::errors::shown(name.as_bytes()),
            self.pid,
            utc(self.since),
            crate::errors::shown_os(self.dir.as_os_str()),
            command.join(" ")
        )
    }
}

/// What inject's first argument names: a PID, or the name of one of the caller's containers,
/// whose supervisor's PID is returned.
pub fn find_target(text: &str) -> Result<i32> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<i32>() {
            Ok(pid) if pid > 0 => Ok(pid),
            _ => bail!("{text}: not a PID"),
        };
    }
    let name =
        parse_name(text).map_err(|why| anyhow!("{}: {why}", crate::errors::printable(text)))?;
    match Registry::open_existing()? {
        Some(registry) => Ok(registry.find(&name)?.pid),
        None => bail!("{name}: no container of that name runs"),
    }
}

/// `contain --list`: the caller's containers, one line each after a header; root's lists every
/// user's, with their uid.
pub fn print_list() -> Result<()> {
    let root = nix::unistd::getuid().is_root();
    let entries = if root {
        // A bad REGISTRY_VAR is said, not passed over.
        own_directory()?;
        list_all()
    } else {
        Registry::open_existing()?
            .map(|r| r.list())
            .unwrap_or_default()
    };
    let mut out = std::io::stdout().lock();
    let mut text = header(root);
    text.push('\n');
    for entry in entries {
        text.push_str(&entry.line(root));
        text.push('\n');
    }
    match out.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing the list"),
        _ => Ok(()),
    }
}

/// The header of `contain --list`.
pub fn header(with_uid: bool) -> String {
    let uid = if with_uid { "UID    " } else { "" };
    format!(
        "{uid}{:<16} {:>7}  {:<20}  DIR  COMMAND",
        "NAME", "PID", "SINCE"
    )
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(seconds: u64) -> String {
    let days = (seconds / 86400) as i64;
    let time = seconds % 86400;
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// A registered container's entry, removed when dropped if it is still this process's.
pub struct Registration {
    dir: OwnedFd,
    file: String,
    pid: i32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        Removal {
            dir: self.dir.as_raw_fd(),
            name: CString::new(self.file.clone()).unwrap_or_default(),
            pid: self.pid,
        }
        .remove();
    }
}

/// An entry to remove if it still names supervisor `pid`: by contain at its end, or by its
/// watchdog after contain was killed. The directory descriptor is the registry's.
#[derive(Clone, Debug)]
pub struct Removal {
    pub dir: RawFd,
    pub name: CString,
    pub pid: i32,
}

impl Removal {
    /// Removes the entry under the registry's lock, if it is still `pid`'s (a new container
    /// may have taken a stale name over).
    pub fn remove(&self) {
        // SAFETY: the descriptor is the registry's, open for as long as the caller holds it.
        let dir = unsafe { BorrowedFd::borrow_raw(self.dir) };
        let Ok(dup) = dir.try_clone_to_owned() else {
            return;
        };
        let Ok(_lock) = Flock::lock(dup, FlockArg::LockExclusive) else {
            return;
        };
        let Ok(name) = self.name.to_str() else {
            return;
        };
        if read_entry(dir, name).is_some_and(|e| e.pid == self.pid) {
            let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_names_of_a_few_characters() {
        assert_eq!(parse_name("web-1.test_x"), Ok("web-1.test_x".into()));
        for bad in ["", ".hidden", "-x", "a/b", "@12", "a b", &"x".repeat(65)] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn entries_round_trip() {
        let entry = Entry {
            name: Some("web".into()),
            pid: 42,
            start_time: 12345,
            since: 1_700_000_000,
            uid: 1000,
            dir: PathBuf::from("/srv/root dir"),
            command: vec!["sleep".into(), "10".into(), "".into()],
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry.clone()));
        let unnamed = Entry {
            name: None,
            ..entry
        };
        assert_eq!(Entry::decode(&unnamed.encode()), Some(unnamed));
        assert_eq!(Entry::decode(b"other\0"), None);
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn this_process_is_live_and_a_changed_start_time_is_not() {
        let entry = Entry::of_this_process(None, Path::new("/"), &[]);
        assert!(entry.is_live());
        let reused = Entry {
            start_time: entry.start_time + 1,
            ..entry
        };
        assert!(!reused.is_live());
    }
}
