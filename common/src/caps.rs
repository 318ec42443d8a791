//! Locking a process down before it execs: capabilities, a non-root user, no_new_privs.
//!
//! A [`Lockdown`] says what the command may hold; [`Lockdown::apply`] enforces it in the
//! process that is about to exec the command, as uid 0 inside its user namespace. It comes from
//! contain's options ([`Lockdown::from_options`]) or, for inject, from the running container's
//! init ([`Lockdown::of_process`]), so that a process injected into a container never holds
//! more than the container's init.
//!
//! Capabilities are handled as bit masks (bit N is capability N) up to the last capability the
//! running kernel knows, so a kernel newer than the `caps` crate loses nothing in `all`.
//!
//! It must not be applied before the tool's own setup is done (callers apply it last, just before
//! exec, so nothing of contain's runs with less), and it must never give an injected command a
//! capability, user or bounding set beyond the container init's.

use crate::idmap::{IdKind, IdMap, IdMaps, IdRange};
use anyhow::{anyhow, bail, Context, Result};
use caps::Capability;
use nix::unistd::{Gid, Uid};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::str::FromStr;

/// The kernel publishes the highest capability number it knows here.
const LAST_CAP_FILE: &str = "/proc/sys/kernel/cap_last_cap";

/// The user and group a command runs as inside its container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    fn is_root(self) -> bool {
        self.uid == 0
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// Parses `--user UID[:GID]`: numeric IDs as seen inside the container (the host's user
/// database means nothing there); GID defaults to UID.
pub fn parse_user(spec: &str) -> Result<User> {
    let (uid_text, gid_text) = match spec.split_once(':') {
        Some((uid, gid)) => (uid, gid),
        None => (spec, spec),
    };
    let id = |noun: &str, text: &str| -> Result<u32> {
        if text.is_empty() {
            bail!("--user '{spec}': {noun} is empty (expected UID[:GID])");
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--user '{spec}': {noun} '{text}' is not a number");
        }
        // (uid_t)-1 means "no ID" to the kernel.
        match text.parse::<u32>() {
            Ok(id) if id != u32::MAX => Ok(id),
            _ => bail!("--user '{spec}': {noun} '{text}' is out of range"),
        }
    };
    Ok(User {
        uid: id("uid", uid_text)?,
        gid: id("gid", gid_text)?,
    })
}

/// The highest capability number the running kernel knows (40 on Linux 5.9 and later).
pub fn last_cap() -> Result<u8> {
    let text = match std::fs::read_to_string(LAST_CAP_FILE) {
        Ok(text) => text,
        // Without /proc (a container chrooted into a root that has none): the highest number
        // PR_CAPBSET_READ accepts.
        Err(e) => {
            return last_cap_of_bounding_set()
                .ok_or_else(|| anyhow!("reading {LAST_CAP_FILE}: {e}"))
        }
    };
    match text.trim().parse::<u8>() {
        Ok(last) if last < 64 => Ok(last),
        _ => bail!("{LAST_CAP_FILE}: unexpected content '{}'", text.trim()),
    }
}

/// The highest capability number PR_CAPBSET_READ accepts (it refuses those the kernel does
/// not know with EINVAL).
fn last_cap_of_bounding_set() -> Option<u8> {
    // SAFETY: PR_CAPBSET_READ takes a capability number and reads no memory.
    let known = |cap: u8| unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong) } >= 0;
    (0..64u8).rev().find(|cap| known(*cap))
}

/// Every capability up to `last`: what a new user namespace grants its first process.
pub fn full_mask(last: u8) -> u64 {
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

/// The kernel's name of capability `index`, or `cap_N` for one the `caps` crate does not know.
pub fn cap_name(index: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == index)
        .map(|c| c.to_string().to_lowercase())
        .unwrap_or_else(|| format!("cap_{index}"))
}

/// The names in a mask, comma-separated, lowercase without `cap_` (as `--cap-add` takes them),
/// `none` for an empty mask.
pub fn describe_mask(mask: u64) -> String {
    let names: Vec<String> = (0..64u8)
        .filter(|i| mask & (1u64 << i) != 0)
        .map(|i| {
            let name = cap_name(i);
            name.strip_prefix("cap_")
                .map(str::to_string)
                .unwrap_or(name)
        })
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

/// Parses one `--cap-drop`/`--cap-add` LIST into a mask: comma-separated names,
/// case-insensitive, with or without `CAP_`, or `all` (every capability up to `last`).
///
/// A name the kernel does not know is an error for `--cap-add` (it cannot be granted) and
/// means nothing for `--cap-drop` (it cannot be held either).
fn parse_cap_list(option: &str, list: &str, last: u8) -> Result<u64> {
    if list.trim().is_empty() {
        bail!("{option}: empty capability list");
    }
    let mut mask = 0;
    for word in list.split(',') {
        let word = word.trim();
        if word.is_empty() {
            bail!("{option} '{list}': empty capability name");
        }
        if word.eq_ignore_ascii_case("all") {
            mask |= full_mask(last);
            continue;
        }
        let cap = Capability::from_str(&caps::to_canonical(word))
            .map_err(|_| anyhow!("{option}: unknown capability '{word}'"))?;
        if cap.index() > last {
            if option == "--cap-add" {
                bail!(
                    "{option}: capability '{word}' is unknown to the running kernel \
                     (its last is {})",
                    cap_name(last)
                );
            }
            continue;
        }
        mask |= cap.bitmask();
    }
    Ok(mask)
}

/// What a command may hold, enforced by [`Lockdown::apply`] just before it execs.
///
/// * The bounding set is [`Lockdown::bounding`]. Root regains its whole bounding set on every
///   exec, so for root inside this is the real limit; so does a user who runs a set-user-ID
///   root program (or one with file capabilities), so for another user it holds only the
///   user's few, as Docker's does.
/// * Run as root inside (no user, or uid 0): the permitted and effective sets are
///   [`Lockdown::root_caps`], the inheritable and ambient sets empty.
/// * Run as another user: only [`Lockdown::user_caps`] are held, as ambient capabilities so
///   that they survive exec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockdown {
    last_cap: u8,
    bounding: u64,
    root_caps: u64,
    user_caps: u64,
    user: Option<User>,
    no_new_privs: bool,
}

impl Lockdown {
    /// Builds the lock-down of contain's options.
    ///
    /// `cap_drop` and `cap_add` hold one LIST per occurrence of the option. The capabilities
    /// are every capability the running kernel knows (what a new user namespace starts with,
    /// whatever the host's bounding set), minus the drops, plus the adds. Root inside holds
    /// exactly those; `user` (`UID[:GID]`) holds only the adds, in its bounding set too.
    /// With no option at all the result [`is_default`](Lockdown::is_default) and applying it
    /// changes nothing.
    ///
    /// Errors name the offending option and word, in one line.
    pub fn from_options(
        cap_drop: &[String],
        cap_add: &[String],
        user: Option<&str>,
        no_new_privs: bool,
    ) -> Result<Lockdown> {
        Self::from_options_for(last_cap()?, cap_drop, cap_add, user, no_new_privs)
    }

    fn from_options_for(
        last_cap: u8,
        cap_drop: &[String],
        cap_add: &[String],
        user: Option<&str>,
        no_new_privs: bool,
    ) -> Result<Lockdown> {
        let mut drops = 0;
        for list in cap_drop {
            drops |= parse_cap_list("--cap-drop", list, last_cap)?;
        }
        let mut adds = 0;
        for list in cap_add {
            adds |= parse_cap_list("--cap-add", list, last_cap)?;
        }
        let caps = (full_mask(last_cap) & !drops) | adds;
        Ok(Lockdown {
            last_cap,
            bounding: caps,
            root_caps: caps,
            user_caps: adds,
            user: user.map(parse_user).transpose()?,
            no_new_privs,
        })
    }

    /// Reads the limits of a running process (for inject: the container's init) from
    /// /proc/PID/status, so that applying the result in an injected process grants it nothing
    /// that process lacks:
    ///
    /// * the bounding set is the process's bounding set limited to its permitted set (a root
    ///   process regains its bounding set on exec, so that is what root inside may hold);
    /// * root inside holds that set; another user (see [`Lockdown::with_user`]) holds the
    ///   process's ambient capabilities, the ones a non-root init was started with;
    /// * no_new_privs is set if it is set for the process.
    ///
    /// The result runs the command as root inside; [`user_of_process`] tells which user the
    /// process itself runs as, for a caller that wants the same.
    pub fn of_process(pid: i32) -> Result<Lockdown> {
        let last_cap = last_cap()?;
        let status = procfs::process::Process::new(pid)
            .and_then(|p| p.status())
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        let full = full_mask(last_cap);
        let bounding = status.capbnd.unwrap_or(full) & status.capprm & full;
        Ok(Lockdown {
            last_cap,
            bounding,
            root_caps: bounding,
            user_caps: status.capamb.unwrap_or(0) & bounding,
            user: None,
            no_new_privs: status.nonewprivs.unwrap_or(0) != 0,
        })
    }

    /// Runs the command as `user` (`UID[:GID]`, as `--user` takes it) instead; `None` changes
    /// nothing. For inject's `--user` on top of [`Lockdown::of_process`].
    pub fn with_user(mut self, user: Option<&str>) -> Result<Lockdown> {
        if let Some(spec) = user {
            self.user = Some(parse_user(spec)?);
        }
        Ok(self)
    }

    /// The same, with an already parsed user (e.g. from [`user_of_process`]).
    pub fn with_ids(mut self, user: User) -> Lockdown {
        self.user = Some(user);
        self
    }

    /// Checks that the user and group to run as are mapped into the container: the kernel
    /// refuses to switch to an unmapped ID, and that must be found before anything starts.
    pub fn check_mapped(&self, maps: &IdMaps) -> Result<()> {
        let Some(user) = self.user else {
            return Ok(());
        };
        for (id, map, kind) in [(user.uid, &maps.uid, "uid"), (user.gid, &maps.gid, "gid")] {
            if map.to_host(id).is_none() {
                bail!(
                    "--user {user}: {kind} {id} is not mapped in the container ({kind} map {map})"
                );
            }
        }
        Ok(())
    }

    /// [`Lockdown::check_mapped`] against the maps of the user namespace `pid` is in (for
    /// inject, whose container already exists).
    pub fn check_mapped_in_process(&self, pid: i32) -> Result<()> {
        if self.user.is_none() {
            return Ok(());
        }
        let maps = IdMaps {
            uid: proc_map(pid, IdKind::User)?,
            gid: proc_map(pid, IdKind::Group)?,
        };
        self.check_mapped(&maps)
    }

    /// True if applying changes nothing: all capabilities, root, no no_new_privs. This is
    /// contain's default, under which distributions must boot as before.
    pub fn is_default(&self) -> bool {
        let full = full_mask(self.last_cap);
        self.bounding == full && self.root_caps == full && self.user.is_none() && !self.no_new_privs
    }

    /// Withholds capability `index` from the command unless `--cap-add` gave it explicitly:
    /// for an init that is better off without it (see crate::systemd).
    pub fn withholding(mut self, index: u8) -> Lockdown {
        let bit = 1u64 << index;
        if self.user_caps & bit == 0 {
            self.bounding &= !bit;
            self.root_caps &= !bit;
        }
        self
    }

    /// The bounding set to apply (bit N = capability N): for a user other than root, only
    /// [`Lockdown::user_caps`], else a set-user-ID root program in the container would give
    /// the user the rest back.
    pub fn bounding(&self) -> u64 {
        match self.user {
            Some(user) if !user.is_root() => self.bounding & self.user_caps,
            _ => self.bounding,
        }
    }

    /// The permitted and effective sets of a command run as root inside.
    pub fn root_caps(&self) -> u64 {
        self.root_caps
    }

    /// The capabilities a command run as another user keeps, as ambient capabilities.
    pub fn user_caps(&self) -> u64 {
        self.user_caps
    }

    /// The user to switch to, if any.
    pub fn user(&self) -> Option<User> {
        self.user
    }

    /// Whether no_new_privs is set.
    pub fn no_new_privs(&self) -> bool {
        self.no_new_privs
    }

    /// Enforces the lock-down on the calling process, which must be single-threaded, uid 0
    /// inside its user namespace with the full capability set there (as after
    /// [`crate::userns::become_root`] or joining the namespace), and about to exec the
    /// command: do it after all other setup, which may need the capabilities it removes.
    ///
    /// Does nothing when [`Lockdown::is_default`]. Otherwise, in this order: drops the bounding
    /// set; switches to the user if there is one (PR_SET_KEEPCAPS, setresgid, setgroups([])
    /// where allowed, setresuid), then sets the permitted, effective and inheritable sets to
    /// the user's few capabilities and raises them as ambient capabilities; as root, sets the
    /// permitted and effective sets to [`Lockdown::root_caps`] and the inheritable set empty;
    /// finally sets no_new_privs if asked.
    ///
    /// A user switch is a credential change: it clears the parent-death signal, so the caller
    /// must arm it again afterwards (`Lifeline::die_with_parent`). Prints nothing.
    pub fn apply(&self) -> Result<()> {
        if self.is_default() {
            return Ok(());
        }
        let bounding = self.bounding();
        for index in 0..=self.last_cap {
            if bounding & (1u64 << index) == 0 {
                bounding_drop(index).with_context(|| {
                    format!("dropping {} from the bounding set", cap_name(index))
                })?;
            }
        }
        let as_root = match self.user {
            Some(user) => user.is_root(),
            None => true,
        };
        if let Some(user) = self.user {
            if !as_root {
                // Without it, leaving uid 0 would empty the permitted set we take the user's
                // capabilities from.
                nix::sys::prctl::set_keepcaps(true).context("setting PR_SET_KEEPCAPS")?;
            }
            crate::userns::switch_to(Uid::from_raw(user.uid), Gid::from_raw(user.gid))?;
            if !as_root {
                nix::sys::prctl::set_keepcaps(false).context("clearing PR_SET_KEEPCAPS")?;
            }
        }
        if as_root {
            set_capabilities(self.root_caps, self.root_caps, 0)?;
        } else {
            // Ambient capabilities must be both permitted and inheritable.
            set_capabilities(self.user_caps, self.user_caps, self.user_caps)?;
            for index in (0..=self.last_cap).filter(|i| self.user_caps & (1u64 << i) != 0) {
                ambient_raise(index)
                    .with_context(|| format!("raising ambient {}", cap_name(index)))?;
            }
        }
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().context("setting no_new_privs")?;
        }
        Ok(())
    }
}

/// A process's credentials as an OCI runtime sets them: the five capability sets given one by
/// one (bit N = capability N), the user with its supplementary groups, no_new_privs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub no_new_privs: bool,
}

/// The mask of capability names as the OCI runtime-spec writes them (`CAP_CHOWN`); a name
/// the running kernel does not know is left out (it could not be held anyway), as runc does.
pub fn mask_of_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<u64> {
    let last = last_cap()?;
    let mut mask = 0;
    for name in names {
        let name = name.as_ref();
        let cap = Capability::from_str(&caps::to_canonical(name))
            .map_err(|_| anyhow!("unknown capability '{name}'"))?;
        if cap.index() <= last {
            mask |= cap.bitmask();
        }
    }
    Ok(mask)
}

impl Credentials {
    /// Enforces the credentials on the calling process, uid 0 in its user namespace with the
    /// full capability set there, about to exec: drops the bounding set, switches to the
    /// user and groups keeping the permitted set (PR_SET_KEEPCAPS), sets the permitted,
    /// effective and inheritable sets, raises the ambient ones, and sets no_new_privs.
    pub fn apply(&self) -> Result<()> {
        let last = last_cap()?;
        for index in 0..=last {
            if self.bounding & (1u64 << index) == 0 {
                bounding_drop(index).with_context(|| {
                    format!("dropping {} from the bounding set", cap_name(index))
                })?;
            }
        }
        nix::sys::prctl::set_keepcaps(true).context("setting PR_SET_KEEPCAPS")?;
        let gid = self.gid as libc::c_long;
        // SAFETY: the credential system calls take integers and change only this process
        // (raw calls, not libc's wrappers: see userns::switch_to).
        nix::errno::Errno::result(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
            .with_context(|| format!("switching to gid {}", self.gid))?;
        // SAFETY: setgroups reads `additional_gids.len()` gids from the vector's buffer.
        let groups = nix::errno::Errno::result(unsafe {
            libc::syscall(
                libc::SYS_setgroups,
                self.additional_gids.len(),
                self.additional_gids.as_ptr(),
            )
        });
        match groups {
            Ok(_) => {}
            // Where setgroups is denied (a user namespace mapped without newgidmap) there are
            // no groups to clear; only groups asked for are an error.
            Err(nix::errno::Errno::EPERM) if self.additional_gids.is_empty() => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "setting the supplementary groups {:?}",
                        self.additional_gids
                    )
                })
            }
        }
        let uid = self.uid as libc::c_long;
        // SAFETY: as above.
        nix::errno::Errno::result(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
            .with_context(|| format!("switching to uid {}", self.uid))?;
        nix::sys::prctl::set_keepcaps(false).context("clearing PR_SET_KEEPCAPS")?;
        set_capabilities(self.permitted, self.effective, self.inheritable)?;
        for index in (0..=last).filter(|i| self.ambient & (1u64 << i) != 0) {
            ambient_raise(index).with_context(|| format!("raising ambient {}", cap_name(index)))?;
        }
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs().context("setting no_new_privs")?;
        }
        Ok(())
    }
}

/// The user and group `pid` runs as (effective IDs), as seen inside its own user namespace.
///
/// /proc/PID/status shows IDs as seen from the reader's user namespace; when that differs from
/// the process's, the IDs are translated back through the process's uid_map and gid_map, whose
/// outside column the kernel also shows from the reader's side.
pub fn user_of_process(pid: i32) -> Result<User> {
    let status = procfs::process::Process::new(pid)
        .and_then(|p| p.status())
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let ns = |path: String| {
        std::fs::metadata(&path)
            .map(|m| (m.dev(), m.ino()))
            .with_context(|| format!("reading {path}"))
    };
    if ns("/proc/self/ns/user".into())? == ns(format!("/proc/{pid}/ns/user"))? {
        return Ok(User {
            uid: status.euid,
            gid: status.egid,
        });
    }
    let inside = |kind: IdKind, seen: u32| -> Result<u32> {
        proc_map(pid, kind)?
            .ranges()
            .iter()
            .find(|r| seen >= r.outside && seen - r.outside < r.count)
            .map(|r| r.inside + (seen - r.outside))
            .ok_or_else(|| {
                anyhow!(
                    "process {pid}: {} {seen} is not in its {}",
                    kind_noun(kind),
                    kind.map_file()
                )
            })
    };
    Ok(User {
        uid: inside(IdKind::User, status.euid)?,
        gid: inside(IdKind::Group, status.egid)?,
    })
}

fn kind_noun(kind: IdKind) -> &'static str {
    match kind {
        IdKind::User => "uid",
        IdKind::Group => "gid",
    }
}

/// The uid_map or gid_map of the user namespace of `pid`, as the kernel shows it to us.
fn proc_map(pid: i32, kind: IdKind) -> Result<IdMap> {
    let path = format!("/proc/{pid}/{}", kind.map_file());
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ranges = text
        .lines()
        .map(|line| {
            let fields: Vec<u32> = line
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            match fields[..] {
                [inside, outside, count] => Ok(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => Err(anyhow!("{path}: unexpected line '{line}'")),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    if ranges.is_empty() {
        bail!(
            "{path} is empty: the namespace has no {} mapped",
            kind_noun(kind)
        );
    }
    IdMap::new(ranges).with_context(|| path.clone())
}

fn bounding_drop(index: u8) -> Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory of ours.
    let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

fn ambient_raise(index: u8) -> Result<()> {
    // SAFETY: PR_CAP_AMBIENT takes plain numbers and touches no memory of ours.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            libc::c_ulong::from(index),
            0,
            0,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// The kernel's struct __user_cap_header_struct.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

/// The kernel's struct __user_cap_data_struct: one 32-bit word of each set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// 64-bit capability sets, passed as two [`CapData`] words.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets the calling thread's permitted, effective and inheritable sets in one capset(2).
fn set_capabilities(permitted: u64, effective: u64, inheritable: u64) -> Result<()> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let word = |mask: u64, half: u32| (mask >> (32 * half)) as u32;
    let data = [0, 1].map(|half| CapData {
        effective: word(effective, half),
        permitted: word(permitted, half),
        inheritable: word(inheritable, half),
    });
    // SAFETY: header and data are live repr(C) values of the layout capset(2) reads for
    // version 3 (one header, two data words); the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if ret != 0 {
        return Err(
            anyhow::Error::new(std::io::Error::last_os_error()).context(format!(
                "setting capabilities (permitted {}, inheritable {})",
                describe_mask(permitted),
                describe_mask(inheritable)
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::Namespace;
    use crate::process;
    use crate::userns::NsChild;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read};
    use std::os::fd::OwnedFd;

    /// The full set of the Linux 5.9+ kernels these tests assume when they name masks.
    const FULL_40: u64 = 0x1ff_ffff_ffff;
    const SYS_ADMIN: u64 = 1 << 21;
    const CHOWN: u64 = 1 << 0;
    const NET_BIND_SERVICE: u64 = 1 << 10;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn options(drop: &[&str], add: &[&str], user: Option<&str>, nnp: bool) -> Result<Lockdown> {
        Lockdown::from_options_for(40, &strings(drop), &strings(add), user, nnp)
    }

    fn error(result: Result<Lockdown>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    #[test]
    fn user_is_uid_and_optional_gid() {
        assert_eq!(
            parse_user("1000").unwrap(),
            User {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(
            parse_user("1000:100").unwrap(),
            User {
                uid: 1000,
                gid: 100
            }
        );
        assert_eq!(parse_user("0:0").unwrap().to_string(), "0:0");
        let err = |spec| format!("{:#}", parse_user(spec).unwrap_err());
        assert_eq!(err(""), "--user '': uid is empty (expected UID[:GID])");
        assert_eq!(
            err("1000:"),
            "--user '1000:': gid is empty (expected UID[:GID])"
        );
        assert_eq!(err("www"), "--user 'www': uid 'www' is not a number");
        assert_eq!(err("1000:x"), "--user '1000:x': gid 'x' is not a number");
        assert_eq!(err("-1"), "--user '-1': uid '-1' is not a number");
        assert_eq!(
            err("4294967295"),
            "--user '4294967295': uid '4294967295' is out of range"
        );
        assert_eq!(
            err("99999999999"),
            "--user '99999999999': uid '99999999999' is out of range"
        );
    }

    #[test]
    fn names_are_case_insensitive_with_or_without_prefix() {
        for spelling in ["sys_admin", "CAP_SYS_ADMIN", "Cap_Sys_Admin", " sys_admin "] {
            let lockdown = options(&[spelling], &[], None, false).unwrap();
            assert_eq!(lockdown.bounding(), FULL_40 & !SYS_ADMIN, "{spelling}");
            assert_eq!(lockdown.root_caps(), FULL_40 & !SYS_ADMIN, "{spelling}");
            assert!(!lockdown.is_default());
        }
        let several = options(&["chown,SYS_ADMIN", "cap_kill"], &[], None, false).unwrap();
        assert_eq!(several.bounding(), FULL_40 & !(SYS_ADMIN | CHOWN | 1 << 5));
    }

    #[test]
    fn drops_come_first_then_adds() {
        let only_chown = options(&["all"], &["chown"], None, false).unwrap();
        assert_eq!(only_chown.bounding(), CHOWN);
        assert_eq!(only_chown.root_caps(), CHOWN);
        assert_eq!(only_chown.user_caps(), CHOWN);
        assert_eq!(options(&["ALL"], &[], None, false).unwrap().bounding(), 0);
        // Dropped and added again: nothing changes.
        assert!(options(&["chown"], &["chown"], None, false)
            .unwrap()
            .is_default());
        assert!(options(&[], &["all"], None, false).unwrap().is_default());
    }

    #[test]
    fn no_option_changes_nothing() {
        let lockdown = options(&[], &[], None, false).unwrap();
        assert!(lockdown.is_default());
        assert_eq!(lockdown.bounding(), FULL_40);
        assert!(!options(&[], &[], None, true).unwrap().is_default());
        assert!(!options(&[], &[], Some("0"), false).unwrap().is_default());
    }

    #[test]
    fn a_user_keeps_only_the_added_capabilities() {
        let plain = options(&[], &[], Some("1000"), false).unwrap();
        assert_eq!(
            plain.user(),
            Some(User {
                uid: 1000,
                gid: 1000
            })
        );
        // A set-user-ID root program gives it nothing back either.
        assert_eq!(plain.bounding(), 0);
        assert_eq!(plain.user_caps(), 0);
        let added = options(&[], &["chown"], Some("1000"), false).unwrap();
        assert_eq!((added.bounding(), added.user_caps()), (CHOWN, CHOWN));
        // Root inside keeps the whole set.
        let root = options(&["chown"], &[], Some("0"), false).unwrap();
        assert_eq!(root.bounding(), FULL_40 & !CHOWN);
        let web = options(&["all"], &["net_bind_service"], Some("1000"), false).unwrap();
        assert_eq!(web.bounding(), NET_BIND_SERVICE);
        assert_eq!(web.user_caps(), NET_BIND_SERVICE);
    }

    #[test]
    fn bad_lists_name_the_offending_word() {
        assert_eq!(
            error(options(&[""], &[], None, false)),
            "--cap-drop: empty capability list"
        );
        assert_eq!(
            error(options(&[], &[" "], None, false)),
            "--cap-add: empty capability list"
        );
        assert_eq!(
            error(options(&["chown,,kill"], &[], None, false)),
            "--cap-drop 'chown,,kill': empty capability name"
        );
        assert_eq!(
            error(options(&["chown,"], &[], None, false)),
            "--cap-drop 'chown,': empty capability name"
        );
        assert_eq!(
            error(options(&["chown,sys_admn"], &[], None, false)),
            "--cap-drop: unknown capability 'sys_admn'"
        );
        assert_eq!(
            error(options(&[], &["CAP_"], None, false)),
            "--cap-add: unknown capability 'CAP_'"
        );
        assert_eq!(
            error(options(&[], &[], Some("root"), false)),
            "--user 'root': uid 'root' is not a number"
        );
    }

    #[test]
    fn capabilities_unknown_to_the_kernel_cannot_be_added() {
        // A kernel before 5.8 stops at audit_read (37); perfmon is 38.
        let old = |drop: &[&str], add: &[&str]| {
            Lockdown::from_options_for(37, &strings(drop), &strings(add), None, false)
        };
        assert_eq!(
            error(old(&["all"], &["perfmon"])),
            "--cap-add: capability 'perfmon' is unknown to the running kernel (its last is cap_audit_read)"
        );
        // Dropping it is harmless: such a kernel never grants it.
        let dropped = old(&["perfmon"], &[]).unwrap();
        assert_eq!(dropped.bounding(), (1 << 38) - 1);
        assert!(dropped.is_default());
        assert_eq!(old(&[], &["all"]).unwrap().bounding(), (1 << 38) - 1);
    }

    #[test]
    fn masks_and_names() {
        assert_eq!(full_mask(40), FULL_40);
        assert_eq!(full_mask(63), u64::MAX);
        assert_eq!(cap_name(21), "cap_sys_admin");
        assert_eq!(cap_name(50), "cap_50");
        assert_eq!(
            describe_mask(CHOWN | NET_BIND_SERVICE),
            "chown,net_bind_service"
        );
        assert_eq!(describe_mask(0), "none");
        let last = last_cap().unwrap();
        assert!(last >= 36, "cap_last_cap {last}");
        assert_eq!(last_cap_of_bounding_set(), Some(last));
    }

    #[test]
    fn the_user_must_be_mapped() {
        let maps = |uid: &str, gid: &str| IdMaps {
            uid: uid.parse().unwrap(),
            gid: gid.parse().unwrap(),
        };
        let user = options(&[], &[], Some("1000"), false).unwrap();
        assert_eq!(
            format!(
                "{:#}",
                user.check_mapped(&maps("0:1001:1", "0:1001:1"))
                    .unwrap_err()
            ),
            "--user 1000:1000: uid 1000 is not mapped in the container (uid map 0:1001:1)"
        );
        let sub = "0:1001:1,1:100000:65536";
        assert!(user.check_mapped(&maps(sub, sub)).is_ok());
        let group = options(&[], &[], Some("1000:70000"), false).unwrap();
        assert_eq!(
            format!("{:#}", group.check_mapped(&maps(sub, sub)).unwrap_err()),
            "--user 1000:70000: gid 70000 is not mapped in the container (gid map 0:1001:1,1:100000:65536)"
        );
        let root = options(&["all"], &[], None, false).unwrap();
        assert!(root.check_mapped(&maps("0:1001:1", "0:1001:1")).is_ok());
    }

    // ---- In real user namespaces ----
    //
    // The forked child calls setresuid through glibc, which first signals every other thread
    // it knows of and waits for them; a fork taken while libtest was starting another thread
    // then waits forever. So each test below runs alone in a fresh run of this test binary
    // (--test-threads=1: only an idle main thread besides the test's own).

    const ISOLATED_ENV: &str = "COMMON_CAPS_TEST_ISOLATED";

    /// Runs `body` as the only test of a new run of this test binary, and fails if it fails.
    fn isolated(test: &str, body: impl FnOnce()) {
        if std::env::var_os(ISOLATED_ENV).is_some() {
            body();
            return;
        }
        let module = module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, rest)| rest);
        let name = format!("{module}::{test}");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(ISOLATED_ENV, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        eprint!("{text}");
        assert!(out.status.success(), "{name} failed in its own run");
        assert!(text.contains("1 passed"), "{name} did not run: {text}");
    }

    /// True if this machine lets us create user namespaces; says why the test is skipped if not.
    fn user_namespaces_work() -> bool {
        match process::spawn(Namespace::User.flag(), || Ok(0)) {
            Ok(pid) => process::wait(pid).is_ok(),
            Err(e) => {
                eprintln!(
                    "skipped: cannot create a user namespace here ({})",
                    e.desc()
                );
                false
            }
        }
    }

    /// Maps with container uid and gid 1000 mapped to something other than itself, so that
    /// translation errors show: a range we may write as root, else the caller's default.
    fn test_maps() -> Option<IdMaps> {
        let maps = if nix::unistd::geteuid().is_root() {
            IdMaps {
                uid: "0:200000:65536".parse().unwrap(),
                gid: "0:200000:65536".parse().unwrap(),
            }
        } else {
            IdMaps::from_args(None, None).unwrap()
        };
        if maps.uid.to_host(1000).is_none() || maps.gid.to_host(1000).is_none() {
            eprintln!("skipped: uid/gid 1000 not mappable (no subordinate IDs in /etc/subuid, /etc/subgid)");
            return None;
        }
        Some(maps)
    }

    /// The credential lines of a /proc/PID/status text.
    #[derive(Debug)]
    struct Creds(HashMap<String, String>);

    impl Creds {
        fn parse(text: &str) -> Creds {
            Creds(
                text.lines()
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                    .collect(),
            )
        }

        fn mask(&self, key: &str) -> u64 {
            u64::from_str_radix(&self.0[key], 16).unwrap()
        }

        /// The first (real) ID of a Uid:/Gid: line.
        fn id(&self, key: &str) -> u32 {
            self.0[key]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        }

        fn check(&self, when: &str, bounding: u64, permitted: u64, inheritable: u64, ambient: u64) {
            let got = [
                self.mask("CapBnd"),
                self.mask("CapPrm"),
                self.mask("CapEff"),
                self.mask("CapInh"),
                self.mask("CapAmb"),
            ];
            let want = [bounding, permitted, permitted, inheritable, ambient];
            assert_eq!(got, want, "{when}: [bnd, prm, eff, inh, amb] {self:?}");
            eprintln!(
                "{when}: CapBnd {:016x} CapPrm {:016x} CapEff {:016x} CapInh {:016x} CapAmb {:016x} NoNewPrivs {} Uid {} Gid {}",
                got[0], got[1], got[2], got[3], got[4], self.0["NoNewPrivs"], self.0["Uid"], self.0["Gid"]
            );
        }
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
    }

    fn report_to(fd: &OwnedFd, text: &str) {
        let _ = nix::unistd::write(fd, text.as_bytes());
    }

    /// What a locked-down process reports: its status right after apply(), whether it could
    /// bind TCP port 80 in its own network namespace, and the status of the program it execs.
    struct Probe {
        before_exec: Creds,
        bind_80: String,
        after_exec: Creds,
    }

    /// Applies `lockdown` in a child in new user and network namespaces, then execs cat on
    /// /proc/self/status; None if user namespaces are unavailable.
    fn probe(lockdown: &Lockdown) -> Option<Probe> {
        let maps = test_maps()?;
        let (read, write) = pipe();
        let child = NsChild::spawn(&[Namespace::Net], &maps, |_| {
            let result = (|| -> Result<()> {
                lockdown.apply()?;
                report_to(&write, &std::fs::read_to_string("/proc/self/status")?);
                let bound = match std::net::TcpListener::bind("0.0.0.0:80") {
                    Ok(_) => "ok".to_string(),
                    Err(e) => e.kind().to_string(),
                };
                report_to(&write, &format!("\n--bind80 {bound}\n"));
                nix::unistd::dup2_stdout(&write)?;
                Err(process::Exec::new(&["/bin/cat", "/proc/self/status"], vec![])?.exec())
            })();
            if let Err(e) = result {
                report_to(&write, &format!("\n--error {e:#}\n"));
            }
            Ok(1)
        })
        .expect("starting the probe");
        drop(write);
        let pid = child.release().unwrap();
        let mut out = String::new();
        std::fs::File::from(read).read_to_string(&mut out).unwrap();
        let status = process::wait(pid).unwrap();
        assert!(!out.contains("\n--error"), "probe failed: {out}");
        assert_eq!(status, 0, "cat's status; output: {out}");
        let (before, rest) = out.split_once("\n--bind80 ").unwrap();
        let (bound, after) = rest.split_once('\n').unwrap();
        Some(Probe {
            before_exec: Creds::parse(before),
            bind_80: bound.to_string(),
            after_exec: Creds::parse(after),
        })
    }

    /// Runs the probe and checks both statuses; returns it for further checks.
    fn expect(
        name: &str,
        lockdown: Lockdown,
        bounding: u64,
        held: u64,
        ambient: u64,
    ) -> Option<Probe> {
        if !user_namespaces_work() {
            return None;
        }
        let probe = probe(&lockdown)?;
        let inheritable = ambient;
        probe.before_exec.check(
            &format!("{name} after apply"),
            bounding,
            held,
            inheritable,
            ambient,
        );
        probe.after_exec.check(
            &format!("{name} after exec"),
            bounding,
            held,
            inheritable,
            ambient,
        );
        let nnp = if lockdown.no_new_privs() { "1" } else { "0" };
        let user = lockdown.user().unwrap_or(User { uid: 0, gid: 0 });
        for creds in [&probe.before_exec, &probe.after_exec] {
            assert_eq!(creds.0["NoNewPrivs"], nnp, "{name}");
            assert_eq!(
                (creds.id("Uid"), creds.id("Gid")),
                (user.uid, user.gid),
                "{name}"
            );
            assert_eq!(creds.0["Groups"], "", "{name}: supplementary groups");
        }
        Some(probe)
    }

    fn full() -> u64 {
        full_mask(last_cap().unwrap())
    }

    fn from(drop: &[&str], add: &[&str], user: Option<&str>, nnp: bool) -> Lockdown {
        Lockdown::from_options(&strings(drop), &strings(add), user, nnp).unwrap()
    }

    #[test]
    fn real_default_keeps_everything() {
        isolated("real_default_keeps_everything", || {
            // The host's bounding set may lack some; a new user namespace has them all.
            if let Some(p) = expect("default", from(&[], &[], None, false), full(), full(), 0) {
                assert_eq!(p.bind_80, "ok");
            }
        });
    }

    #[test]
    fn real_drop_sys_admin() {
        isolated("real_drop_sys_admin", || {
            for spelling in ["sys_admin", "CAP_SYS_ADMIN"] {
                let want = full() & !SYS_ADMIN;
                expect(spelling, from(&[spelling], &[], None, false), want, want, 0);
            }
        });
    }

    #[test]
    fn real_drop_all() {
        isolated("real_drop_all", || {
            if let Some(p) = expect("drop all", from(&["all"], &[], None, false), 0, 0, 0) {
                assert_eq!(p.bind_80, "permission denied");
            }
        });
    }

    #[test]
    fn real_drop_all_add_chown() {
        isolated("real_drop_all_add_chown", || {
            expect(
                "drop all add chown",
                from(&["all"], &["chown"], None, false),
                CHOWN,
                CHOWN,
                0,
            );
        });
    }

    #[test]
    fn real_user_gets_nothing() {
        isolated("real_user_gets_nothing", || {
            if let Some(p) = expect(
                "user 1000:1000",
                from(&[], &[], Some("1000:1000"), false),
                0,
                0,
                0,
            ) {
                assert_eq!(p.bind_80, "permission denied");
            }
        });
    }

    #[test]
    fn real_user_keeps_added_capability_across_exec() {
        isolated("real_user_keeps_added_capability_across_exec", || {
            let lockdown = from(&["all"], &["net_bind_service"], Some("1000"), false);
            let nbs = NET_BIND_SERVICE;
            if let Some(p) = expect(
                "user 1000 drop all add net_bind_service",
                lockdown,
                nbs,
                nbs,
                nbs,
            ) {
                assert_eq!(p.bind_80, "ok");
            }
        });
    }

    #[test]
    fn real_no_new_privs() {
        isolated("real_no_new_privs", || {
            expect(
                "no_new_privs",
                from(&[], &[], None, true),
                full(),
                full(),
                0,
            );
        });
    }

    /// A process that applied `lockdown`, then exec'd a shell that waits for its stdin to close.
    struct Held {
        pid: nix::unistd::Pid,
        stdin: Option<OwnedFd>,
    }

    impl Held {
        fn start(lockdown: &Lockdown, maps: &IdMaps) -> Held {
            let (stdin_read, stdin_write) = pipe();
            let (out_read, out_write) = pipe();
            let child = NsChild::spawn(&[], maps, |_| {
                let result = (|| -> Result<()> {
                    lockdown.apply()?;
                    nix::unistd::dup2_stdin(&stdin_read)?;
                    nix::unistd::dup2_stdout(&out_write)?;
                    Err(process::Exec::new(
                        &["/bin/sh", "-c", "echo ready; read x; exit 0"],
                        vec![],
                    )?
                    .exec())
                })();
                if let Err(e) = result {
                    report_to(&out_write, &format!("--error {e:#}\n"));
                }
                Ok(1)
            })
            .expect("starting the held process");
            drop((stdin_read, out_write));
            let pid = child.release().unwrap();
            let mut line = String::new();
            BufReader::new(std::fs::File::from(out_read))
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line, "ready\n", "held process");
            Held {
                pid,
                stdin: Some(stdin_write),
            }
        }

        fn finish(mut self) {
            self.stdin.take();
            assert_eq!(process::wait(self.pid).unwrap(), 0);
        }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            if self.stdin.is_some() {
                process::kill_and_reap(self.pid);
            }
        }
    }

    #[test]
    fn real_of_process_reads_a_locked_down_user_init() {
        isolated("real_of_process_reads_a_locked_down_user_init", || {
            if !user_namespaces_work() {
                return;
            }
            let Some(maps) = test_maps() else { return };
            let init_lockdown = from(&["all"], &["net_bind_service"], Some("1000"), true);
            let init = Held::start(&init_lockdown, &maps);
            let pid = init.pid.as_raw();
            let read = Lockdown::of_process(pid).unwrap();
            let user = user_of_process(pid).unwrap();
            let mapped = read
                .clone()
                .with_user(Some("1000"))
                .unwrap()
                .check_mapped_in_process(pid);
            let unmapped = read
                .clone()
                .with_user(Some("70000"))
                .unwrap()
                .check_mapped_in_process(pid);
            init.finish();

            eprintln!(
            "of_process(user init): bounding {:016x} root_caps {:016x} user_caps {:016x} nnp {} user {user}",
            read.bounding(),
            read.root_caps(),
            read.user_caps(),
            read.no_new_privs()
        );
            assert_eq!(read.bounding(), NET_BIND_SERVICE);
            assert_eq!(read.root_caps(), NET_BIND_SERVICE);
            assert_eq!(read.user_caps(), NET_BIND_SERVICE);
            assert!(read.no_new_privs());
            assert_eq!(read.user(), None);
            // Seen from here, 1000 inside is another ID on the host: it must be translated back.
            assert_eq!(
                user,
                User {
                    uid: 1000,
                    gid: 1000
                }
            );
            mapped.unwrap();
            let err = format!("{:#}", unmapped.unwrap_err());
            assert!(
                err.starts_with("--user 70000:70000: uid 70000 is not mapped in the container"),
                "{err}"
            );

            // What inject would apply: root inside gets no more than the init, nor does --user.
            let nbs = NET_BIND_SERVICE;
            let as_root = expect("inject as root into user init", read.clone(), nbs, nbs, 0);
            if let Some(p) = as_root {
                assert_eq!(p.after_exec.0["NoNewPrivs"], "1");
            }
            expect(
                "inject --user 1000 into user init",
                read.with_ids(user),
                nbs,
                nbs,
                nbs,
            );
        });
    }

    #[test]
    fn real_of_process_reads_a_root_init() {
        isolated("real_of_process_reads_a_root_init", || {
            if !user_namespaces_work() {
                return;
            }
            let Some(maps) = test_maps() else { return };
            let default = Held::start(&from(&[], &[], None, false), &maps);
            let read_default = Lockdown::of_process(default.pid.as_raw()).unwrap();
            let default_user = user_of_process(default.pid.as_raw()).unwrap();
            default.finish();
            assert!(read_default.is_default(), "{read_default:?}");
            assert_eq!(default_user, User { uid: 0, gid: 0 });

            let init = Held::start(&from(&["sys_admin"], &[], None, false), &maps);
            let read = Lockdown::of_process(init.pid.as_raw()).unwrap();
            init.finish();
            let want = full() & !SYS_ADMIN;
            assert_eq!(
                (read.bounding(), read.root_caps(), read.user_caps()),
                (want, want, 0)
            );
            assert!(!read.no_new_privs() && !read.is_default());
            expect(
                "inject as root into root init without sys_admin",
                read.clone(),
                want,
                want,
                0,
            );
            let user = read.with_user(Some("1000:1000")).unwrap();
            expect(
                "inject --user 1000 into root init without sys_admin",
                user,
                0,
                0,
                0,
            );
        });
    }

    #[test]
    fn of_process_of_a_missing_process_fails() {
        let err = format!("{:#}", Lockdown::of_process(i32::MAX).unwrap_err());
        assert!(
            err.starts_with(&format!("reading /proc/{}/status", i32::MAX)),
            "{err}"
        );
    }
}
