//! ID maps: which container IDs stand for which host IDs.
//!
//! A map is written `START:LOWER:COUNT[,START:LOWER:COUNT]...`: COUNT IDs from START inside the
//! container correspond to COUNT IDs from LOWER on the host. Validation follows the kernel's own
//! rules for /proc/PID/uid_map so that a bad map is refused here, with a message naming the bad
//! part, instead of as a bare EINVAL from the kernel.
//!
//! It parses, checks and computes maps; it must not write them (userns does) or start a process.

use anyhow::{bail, Context, Result};
use std::fmt;
use std::str::FromStr;

/// The kernel refuses more lines than this in uid_map or gid_map.
pub const MAX_RANGES: usize = 340;

/// The highest valid ID: (uid_t)-1 means "no ID" to the kernel.
const LAST_ID: u64 = u32::MAX as u64 - 1;

/// Which kind of ID a map is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    User,
    Group,
}

impl IdKind {
    /// The name of the map file under /proc/PID.
    pub fn map_file(self) -> &'static str {
        match self {
            IdKind::User => "uid_map",
            IdKind::Group => "gid_map",
        }
    }

    /// shadow's setuid helper that writes maps with subordinate ranges.
    pub fn helper(self) -> &'static str {
        match self {
            IdKind::User => "newuidmap",
            IdKind::Group => "newgidmap",
        }
    }

    /// The subordinate ID file that grants ranges to users.
    pub fn subid_file(self) -> &'static str {
        match self {
            IdKind::User => "/etc/subuid",
            IdKind::Group => "/etc/subgid",
        }
    }

    /// The caller's real ID of this kind on the host.
    pub fn current(self) -> u32 {
        match self {
            IdKind::User => nix::unistd::getuid().as_raw(),
            IdKind::Group => nix::unistd::getgid().as_raw(),
        }
    }

    /// `uid` or `gid`.
    pub fn noun(self) -> &'static str {
        match self {
            IdKind::User => "uid",
            IdKind::Group => "gid",
        }
    }
}

/// COUNT consecutive IDs from `inside` in the container, from `outside` on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdRange {
    fn overlaps(a_start: u32, b_start: u32, a: &IdRange, b: &IdRange) -> bool {
        let (a_end, b_end) = (
            a_start as u64 + a.count as u64,
            b_start as u64 + b.count as u64,
        );
        (a_start as u64) < b_end && (b_start as u64) < a_end
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.inside, self.outside, self.count)
    }
}

/// A validated ID map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    ranges: Vec<IdRange>,
}

impl IdMap {
    /// Checks ranges against the kernel's rules.
    pub fn new(ranges: Vec<IdRange>) -> Result<IdMap> {
        if ranges.is_empty() {
            bail!("empty map");
        }
        if ranges.len() > MAX_RANGES {
            bail!(
                "{} ranges, more than the {MAX_RANGES} the kernel accepts",
                ranges.len()
            );
        }
        for r in &ranges {
            if r.count == 0 {
                bail!("range {r}: COUNT is 0");
            }
            if r.inside as u64 + r.count as u64 - 1 > LAST_ID
                || r.outside as u64 + r.count as u64 - 1 > LAST_ID
            {
                bail!("range {r}: overflows 32 bits (the last ID is {LAST_ID})");
            }
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[..i] {
                if IdRange::overlaps(a.inside, b.inside, a, b) {
                    bail!("ranges {b} and {a} overlap inside the container");
                }
                if IdRange::overlaps(a.outside, b.outside, a, b) {
                    bail!("ranges {b} and {a} overlap on the host");
                }
            }
        }
        Ok(IdMap { ranges })
    }

    /// The single range `inside` → `outside`.
    pub fn single(inside: u32, outside: u32) -> IdMap {
        IdMap {
            ranges: vec![IdRange {
                inside,
                outside,
                count: 1,
            }],
        }
    }

    pub fn ranges(&self) -> &[IdRange] {
        &self.ranges
    }

    /// The host ID that container ID `id` stands for, if it is mapped.
    pub fn to_host(&self, id: u32) -> Option<u32> {
        self.ranges
            .iter()
            .find(|r| id >= r.inside && (id - r.inside) < r.count)
            .map(|r| r.outside + (id - r.inside))
    }

    /// True if the map names no host ID but `host_id`: the kernel lets an unprivileged process
    /// write such a map itself, everything else needs newuidmap/newgidmap.
    pub fn only_maps(&self, host_id: u32) -> bool {
        self.ranges
            .iter()
            .all(|r| r.count == 1 && r.outside == host_id)
    }

    /// The text the kernel expects in /proc/PID/uid_map: `inside outside count` lines.
    pub fn proc_text(&self) -> String {
        self.ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
            .collect()
    }

    /// The arguments newuidmap/newgidmap take after the PID.
    pub fn helper_args(&self) -> Vec<String> {
        self.ranges
            .iter()
            .flat_map(|r| [r.inside, r.outside, r.count])
            .map(|n| n.to_string())
            .collect()
    }

    /// The map used when none is given.
    ///
    /// As real root: container 0, 1, 2, ... run through root's own ranges in /etc/subuid
    /// (/etc/subgid), in file order, as a user's 1, 2, ... do (root's own ID is never mapped);
    /// without such ranges, they are the block of [`ROOT_BLOCK_SIZE`] host IDs that
    /// [`root_block`] picks, which no account, group or subordinate range of the host has. Either way no
    /// container ID is a host user's or group's: container root may chown and chmod its files
    /// at will (set-user-ID ones included) without handing them to anyone on the host.
    /// As root of a user namespace (inside a container, pseudo or `unshare -Ur`): every ID that
    /// exists in it is itself, so that container root is the caller, as for an ordinary user;
    /// no other ID could be mapped (and only root itself when the capability to map IDs has
    /// been dropped).
    /// Otherwise: container 0 is the caller and 1, 2, ... run through the caller's subordinate
    /// ranges in file order.
    pub fn default_for(kind: IdKind) -> Result<IdMap> {
        let subordinate = match std::fs::read_to_string(kind.subid_file()) {
            Ok(text) => subordinate_ranges(&text, kind, &login_names()),
            Err(_) => Vec::new(),
        };
        if nix::unistd::geteuid().is_root() {
            let own = own_namespace(kind);
            if !is_initial(&own) {
                if !may_map_others(kind) {
                    // Only its own ID is left to a root that dropped the capability.
                    return Ok(Self::single(0, 0));
                }
                return Ok(Self::identity_of(&own));
            }
            if let Some(map) = Self::through(&subordinate) {
                return Ok(map);
            }
            let base = root_block(&HostIds::read())?;
            return Ok(IdMap {
                ranges: vec![IdRange {
                    inside: 0,
                    outside: base,
                    count: ROOT_BLOCK_SIZE,
                }],
            });
        }
        Ok(Self::stacked(kind.current(), &subordinate))
    }

    /// Container 0, 1, 2, ... through `subordinate` (start, count) in order; a range that
    /// starts at 0 is left out, as host root is never mapped. None if no range is left.
    fn through(subordinate: &[(u32, u32)]) -> Option<IdMap> {
        let usable: Vec<(u32, u32)> = subordinate.iter().copied().filter(|r| r.0 != 0).collect();
        let map = Self::appended(Vec::new(), &usable);
        (!map.ranges.is_empty()).then_some(map)
    }

    /// Every ID of a user namespace's map (its inside column) as itself, container 0 first.
    fn identity_of(namespace: &[IdRange]) -> IdMap {
        let mut ranges = vec![IdRange {
            inside: 0,
            outside: 0,
            count: 1,
        }];
        let mut inside: Vec<(u64, u64)> = namespace
            .iter()
            .map(|r| (r.inside as u64, r.inside as u64 + r.count as u64))
            .collect();
        inside.sort_unstable();
        for (start, end) in inside {
            // Without 0, which comes first, and without the ID (uid_t)-1.
            let (start, end) = (start.max(1), end.min(LAST_ID + 1));
            if start < end && ranges.len() < MAX_RANGES {
                let id = start as u32;
                ranges.push(IdRange {
                    inside: id,
                    outside: id,
                    count: (end - start) as u32,
                });
            }
        }
        IdMap { ranges }
    }

    /// The same map cut where the ranges of `namespace` (the writer's own user namespace: its
    /// IDs are the inside column) end: the kernel accepts a range only when its IDs lie within
    /// one line of the writer's map, so `0:0:8` must be written `0 0 1`, `1 1 7` inside a
    /// container whose map is `0:1000:1,1:100000:65536`. Fails, naming the first ID that does
    /// not exist in the namespace, when the map names one.
    pub fn within(&self, namespace: &[IdRange], kind: IdKind) -> Result<IdMap> {
        let mut ranges = Vec::new();
        for r in &self.ranges {
            let (mut inside, mut outside, mut left) =
                (r.inside as u64, r.outside as u64, r.count as u64);
            while left > 0 {
                let Some(line) = namespace.iter().find(|n| {
                    (n.inside as u64..n.inside as u64 + n.count as u64).contains(&outside)
                }) else {
                    let noun = kind.noun();
                    let ids: Vec<String> = namespace
                        .iter()
                        .map(|n| match n.count {
                            1 => n.inside.to_string(),
                            _ => format!("{}-{}", n.inside, n.inside as u64 + n.count as u64 - 1),
                        })
                        .collect();
                    bail!(
                        "{noun} map {self}: {noun} {outside} does not exist in this user \
                         namespace, which has only {noun}s {}: map only those (-{} MAP)",
                        ids.join(","),
                        &noun[..1]
                    );
                };
                let count = left.min(line.inside as u64 + line.count as u64 - outside);
                ranges.push(IdRange {
                    inside: inside as u32,
                    outside: outside as u32,
                    count: count as u32,
                });
                inside += count;
                outside += count;
                left -= count;
            }
        }
        if ranges.len() > MAX_RANGES {
            bail!(
                "{} map {self}: {} lines where this user namespace's ranges end, more than \
                 the {MAX_RANGES} the kernel accepts",
                kind.noun(),
                ranges.len()
            );
        }
        Ok(IdMap { ranges })
    }

    /// Container 0 → `own`, then container 1, 2, ... through `subordinate` (start, count).
    fn stacked(own: u32, subordinate: &[(u32, u32)]) -> IdMap {
        let root = IdRange {
            inside: 0,
            outside: own,
            count: 1,
        };
        Self::appended(vec![root], subordinate)
    }

    /// `ranges`, then the next container IDs through `subordinate` (start, count) in order.
    fn appended(mut ranges: Vec<IdRange>, subordinate: &[(u32, u32)]) -> IdMap {
        let mut next: u64 = ranges.iter().map(|r| r.count as u64).sum();
        for &(start, count) in subordinate {
            // Cut where the IDs end, on the host (a malformed line) and inside.
            let count = (count as u64).min((LAST_ID + 1).saturating_sub(start as u64));
            if count == 0 {
                continue;
            }
            let count = count.min((LAST_ID + 1).saturating_sub(next)) as u32;
            if count == 0 || ranges.len() == MAX_RANGES {
                break;
            }
            // A subordinate range that covers the caller's own ID would map it twice.
            let candidate = IdRange {
                inside: next as u32,
                outside: start,
                count,
            };
            if ranges
                .iter()
                .any(|r| IdRange::overlaps(r.outside, start, r, &candidate))
            {
                continue;
            }
            ranges.push(candidate);
            next += count as u64;
        }
        IdMap { ranges }
    }
}

impl FromStr for IdMap {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<IdMap> {
        let ranges = text
            .split(',')
            .map(parse_range)
            .collect::<Result<Vec<_>>>()?;
        IdMap::new(ranges)
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

fn parse_range(part: &str) -> Result<IdRange> {
    let fields: Vec<&str> = part.split(':').collect();
    if fields.len() != 3 {
        bail!("range '{part}': expected START:LOWER:COUNT");
    }
    let number = |name: &str, field: &str| -> Result<u32> {
        if field.is_empty() {
            bail!("range '{part}': {name} is empty");
        }
        if !field.bytes().all(|b| b.is_ascii_digit()) {
            bail!("range '{part}': {name} '{field}' is not a number");
        }
        field
            .parse::<u32>()
            .with_context(|| format!("range '{part}': {name} '{field}' overflows 32 bits"))
    };
    Ok(IdRange {
        inside: number("START", fields[0])?,
        outside: number("LOWER", fields[1])?,
        count: number("COUNT", fields[2])?,
    })
}

/// The names /etc/subuid lines may use for the caller: every account of its uid in
/// /etc/passwd. Read directly rather than through NSS, which a static build cannot load
/// safely; an account known only to a network directory is still matched by its numeric uid.
fn login_names() -> Vec<String> {
    let uid = nix::unistd::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .map(|text| accounts_of(&text, uid))
        .unwrap_or_default()
}

/// The names of the accounts of `uid` in a passwd file's text.
fn accounts_of(passwd: &str, uid: u32) -> Vec<String> {
    passwd
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// The caller's ranges in a subordinate ID file, in file order.
///
/// Lines are `NAME_OR_UID:START:COUNT`; they are matched by login name or by numeric user ID
/// (shadow matches subgid lines by user too). Malformed lines are skipped with a warning.
pub fn subordinate_ranges(text: &str, kind: IdKind, names: &[String]) -> Vec<(u32, u32)> {
    let uid = nix::unistd::getuid().as_raw().to_string();
    let mut ranges = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        let parsed = match fields.as_slice() {
            [who, start, count] => match (start.parse::<u32>(), count.parse::<u32>()) {
                (Ok(s), Ok(c)) if c > 0 => Some((*who, s, c)),
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some((who, start, count)) => {
                if who == uid || names.iter().any(|n| n == who) {
                    ranges.push((start, count));
                }
            }
            None => crate::errors::warn(&format!(
                "{} line {}: malformed, skipped",
                kind.subid_file(),
                n + 1
            )),
        }
    }
    ranges
}

/// How many host IDs root's default block holds: as many as a 16-bit system had, what a
/// distribution's tree uses (systemd-nspawn's `--private-users=pick` takes as many).
pub const ROOT_BLOCK_SIZE: u32 = 65536;

/// Where root's default block is looked for, in steps of [`ROOT_BLOCK_SIZE`]: systemd's table
/// of UID ranges (systemd.io/UIDS-GIDS) leaves 0x70000000-0x7FFDFFFF unused, above
/// systemd-nspawn's container ranges (which end at 0x6FFFFFFF) and shadow's default
/// SUB_UID_MAX and SUB_GID_MAX (600100000), below systemd's foreign range (0x7FFE0000) and
/// below 2^31, which programs that take IDs for signed numbers mishandle.
pub const ROOT_BLOCKS: (u32, u32) = (0x7000_0000, 0x7FFE_0000);

/// The host IDs the host's own files give out: every uid of /etc/passwd, every gid of
/// /etc/group and every range of /etc/subuid and /etc/subgid, whoever they are for. Read
/// directly, as the user names are (see [`login_names`]): accounts known only to a network
/// directory are not seen.
#[derive(Debug, Default)]
pub struct HostIds {
    /// `[start, end)` ranges.
    taken: Vec<(u64, u64)>,
}

impl HostIds {
    /// The IDs given out on this host, from its files (a missing file gives none).
    pub fn read() -> HostIds {
        let file = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        Self::parse(
            &file("/etc/passwd"),
            &file("/etc/group"),
            &file(IdKind::User.subid_file()),
            &file(IdKind::Group.subid_file()),
        )
    }

    /// The IDs of these files' texts: field 3 of passwd and group lines, START:COUNT of
    /// subordinate ID lines.
    pub fn parse(passwd: &str, group: &str, subuid: &str, subgid: &str) -> HostIds {
        let mut taken = Vec::new();
        for line in passwd.lines().chain(group.lines()) {
            if let Some(Ok(id)) = line.split(':').nth(2).map(|f| f.trim().parse::<u32>()) {
                taken.push((id as u64, id as u64 + 1));
            }
        }
        for line in subuid.lines().chain(subgid.lines()) {
            let fields: Vec<&str> = line.trim().split(':').collect();
            if let [_, start, count] = fields[..] {
                if let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) {
                    taken.push((start, start + count));
                }
            }
        }
        HostIds { taken }
    }

    /// What takes an ID of `[start, end)`, if anything does.
    fn first_in(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        self.taken
            .iter()
            .copied()
            .find(|&(s, e)| s < end && start < e)
    }
}

/// The first host ID of root's default block: the first multiple of [`ROOT_BLOCK_SIZE`] in
/// [`ROOT_BLOCKS`] whose block holds no ID `taken` names, for users and groups alike. On a
/// host whose files give out nothing there that is 1879048192 (0x70000000): container ID N
/// is host ID 1879048192 + N, and the low 16 bits of a host ID are the container's. The
/// choice moves only when something comes to take an ID of the block.
pub fn root_block(taken: &HostIds) -> Result<u32> {
    let (first, end) = ROOT_BLOCKS;
    let mut base = first as u64;
    while base + ROOT_BLOCK_SIZE as u64 <= end as u64 {
        match taken.first_in(base, base + ROOT_BLOCK_SIZE as u64) {
            None => return Ok(base as u32),
            // Past what took it, on the next boundary.
            Some((_, taken_end)) => {
                base = taken_end.div_ceil(ROOT_BLOCK_SIZE as u64) * ROOT_BLOCK_SIZE as u64
            }
        }
    }
    bail!(
        "no block of {ROOT_BLOCK_SIZE} host IDs from {first} to {} is free of the IDs /etc/passwd, \
         /etc/group, /etc/subuid and /etc/subgid give out: grant root ranges of its own \
         (usermod --add-subuids START-END --add-subgids START-END root) or give maps with -u \
         and -g",
        end - 1
    )
}

/// The uid and gid maps of one user namespace.
#[derive(Clone, Debug)]
pub struct IdMaps {
    pub uid: IdMap,
    pub gid: IdMap,
}

impl IdMaps {
    /// The host uid and gid that container root is ([`IdMaps::from_args`] makes sure both
    /// are mapped).
    pub fn root_on_host(&self) -> Option<(u32, u32)> {
        self.uid.to_host(0).zip(self.gid.to_host(0))
    }

    /// The maps given on the command line, or the defaults. Container root must be mapped:
    /// every tool becomes root inside.
    pub fn from_args(uid: Option<IdMap>, gid: Option<IdMap>) -> Result<IdMaps> {
        let default = |kind: IdKind| {
            IdMap::default_for(kind).with_context(|| format!("the default {} map", kind.noun()))
        };
        let maps = IdMaps {
            uid: match uid {
                Some(map) => map,
                None => default(IdKind::User)?,
            },
            gid: match gid {
                Some(map) => map,
                None => default(IdKind::Group)?,
            },
        };
        for (map, kind) in [(&maps.uid, IdKind::User), (&maps.gid, IdKind::Group)] {
            if map.to_host(0).is_none() {
                bail!(
                    "{} map {map}: container {} 0 is not mapped",
                    kind.noun(),
                    kind.noun()
                );
            }
        }
        Ok(maps)
    }
}

/// The ID map of the caller's own user namespace, from /proc/self/uid_map or gid_map: the
/// IDs that exist here (inside) and what they are in the parent namespace (outside). The
/// initial namespace's, `0 0 4294967295`, if it cannot be read.
pub fn own_namespace(kind: IdKind) -> Vec<IdRange> {
    let text = std::fs::read_to_string(format!("/proc/self/{}", kind.map_file()));
    let ranges = text.map(|t| parse_proc_map(&t)).unwrap_or_default();
    if ranges.is_empty() {
        return vec![IdRange {
            inside: 0,
            outside: 0,
            count: u32::MAX,
        }];
    }
    ranges
}

/// The lines of a /proc/PID/uid_map or gid_map text.
fn parse_proc_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<u32> = line
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            match f.as_slice() {
                &[inside, outside, count] if count > 0 => Some(IdRange {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

/// True if the caller holds CAP_SETUID (CAP_SETGID for groups) in its user namespace, which
/// the kernel asks of a process that maps IDs other than its own.
pub fn may_map_others(kind: IdKind) -> bool {
    let cap = match kind {
        IdKind::User => caps::Capability::CAP_SETUID,
        IdKind::Group => caps::Capability::CAP_SETGID,
    };
    caps::has_cap(None, caps::CapSet::Effective, cap).unwrap_or(false)
}

/// True for the map of the initial user namespace, where every ID is itself.
pub fn is_initial(namespace: &[IdRange]) -> bool {
    namespace
        == [IdRange {
            inside: 0,
            outside: 0,
            count: u32::MAX,
        }]
}

/// clap value parser for `-u MAP` / `-g MAP`.
pub fn parse_map(text: &str) -> Result<IdMap, String> {
    text.parse::<IdMap>().map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", text.parse::<IdMap>().unwrap_err())
    }

    #[test]
    fn parses_several_ranges() {
        let map: IdMap = "0:1000:1,1:100000:65536".parse().unwrap();
        assert_eq!(map.to_host(0), Some(1000));
        assert_eq!(map.to_host(1), Some(100000));
        assert_eq!(map.to_host(65536), Some(165535));
        assert_eq!(map.to_host(65537), None);
        assert_eq!(map.proc_text(), "0 1000 1\n1 100000 65536\n");
        assert_eq!(map.to_string(), "0:1000:1,1:100000:65536");
    }

    #[test]
    fn names_the_bad_part() {
        assert_eq!(err(""), "range '': expected START:LOWER:COUNT");
        assert_eq!(err("0:1000"), "range '0:1000': expected START:LOWER:COUNT");
        assert_eq!(err("0::1"), "range '0::1': LOWER is empty");
        assert_eq!(err("0:x:1"), "range '0:x:1': LOWER 'x' is not a number");
        assert_eq!(err("0:-1:1"), "range '0:-1:1': LOWER '-1' is not a number");
        assert_eq!(err("0:1000:0"), "range 0:1000:0: COUNT is 0");
        assert!(err("0:1000:99999999999").contains("COUNT '99999999999' overflows 32 bits"));
        assert!(err("1:1:4294967295").contains("overflows 32 bits"));
        assert!(err("0:4294967295:1").contains("overflows 32 bits"));
        assert_eq!(
            err("0:1000:10,5:2000:10"),
            "ranges 0:1000:10 and 5:2000:10 overlap inside the container"
        );
        assert_eq!(
            err("0:1000:10,10:1005:10"),
            "ranges 0:1000:10 and 10:1005:10 overlap on the host"
        );
    }

    #[test]
    fn the_last_id_is_usable_but_not_beyond() {
        assert!("0:4294967294:1".parse::<IdMap>().is_ok());
        assert!("1:1:4294967294".parse::<IdMap>().is_ok());
        assert!("1:1:4294967295".parse::<IdMap>().is_err());
        assert!("2:2:4294967294".parse::<IdMap>().is_err());
    }

    #[test]
    fn at_most_340_ranges() {
        let ok: Vec<String> = (0..340).map(|i| format!("{i}:{}:1", 1000 + i)).collect();
        assert!(ok.join(",").parse::<IdMap>().is_ok());
        let too_many: Vec<String> = (0..341).map(|i| format!("{i}:{}:1", 1000 + i)).collect();
        assert_eq!(
            err(&too_many.join(",")),
            "341 ranges, more than the 340 the kernel accepts"
        );
    }

    #[test]
    fn subordinate_lines_match_by_name_or_uid_in_order() {
        let uid = nix::unistd::getuid().as_raw();
        let text = format!(
            "other:1:5\nme:100000:65536\nbroken line\n{uid}:300000:10\nme:x:1\nme:400000:0\n"
        );
        let names = vec!["me".to_string()];
        assert_eq!(
            subordinate_ranges(&text, IdKind::User, &names),
            vec![(100000, 65536), (300000, 10)]
        );
    }

    #[test]
    fn accounts_are_found_by_uid_in_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nme:x:1001:1001::/home/me:/bin/sh\n\
                      broken\nalias:x:1001:1001::/:/bin/sh\nother:x:1002:1002::/:/bin/sh\n";
        assert_eq!(accounts_of(passwd, 1001), vec!["me", "alias"]);
        assert!(accounts_of(passwd, 5).is_empty());
    }

    #[test]
    fn stacked_map_puts_ranges_after_root() {
        let map = IdMap::stacked(1000, &[(100000, 65536), (300000, 10)]);
        assert_eq!(map.to_string(), "0:1000:1,1:100000:65536,65537:300000:10");
        assert_eq!(IdMap::stacked(1000, &[]).to_string(), "0:1000:1");
        // A range holding the caller's own ID is skipped rather than mapped twice.
        assert_eq!(
            IdMap::stacked(1000, &[(900, 200), (5000, 2)]).to_string(),
            "0:1000:1,1:5000:2"
        );
    }

    #[test]
    fn only_own_id_can_be_written_directly() {
        assert!(IdMap::single(0, 1000).only_maps(1000));
        assert!(!"0:1000:1,1:100000:10"
            .parse::<IdMap>()
            .unwrap()
            .only_maps(1000));
        assert!(!IdMap::single(0, 1001).only_maps(1000));
    }

    #[test]
    fn maps_are_cut_where_the_namespace_ranges_end() {
        let contained = parse_proc_map("0 1000 1\n1 100000 65536\n");
        let map: IdMap = "0:0:8".parse().unwrap();
        assert_eq!(
            map.within(&contained, IdKind::Group).unwrap().to_string(),
            "0:0:1,1:1:7"
        );
        let map: IdMap = "0:0:1,1:1:7".parse().unwrap();
        assert_eq!(map.within(&contained, IdKind::User).unwrap(), map);
        let err = "0:65530:10"
            .parse::<IdMap>()
            .unwrap()
            .within(&contained, IdKind::User)
            .unwrap_err();
        assert_eq!(
            format!("{err}"),
            "uid map 0:65530:10: uid 65537 does not exist in this user namespace, which has \
             only uids 0,1-65536: map only those (-u MAP)"
        );
        let initial = parse_proc_map("         0          0 4294967295\n");
        assert!(is_initial(&initial));
        assert!(!is_initial(&contained));
        let map: IdMap = "0:4294967294:1,1:1:4294967293".parse().unwrap();
        assert_eq!(map.within(&initial, IdKind::User).unwrap(), map);
    }

    #[test]
    fn nested_root_maps_the_ids_of_its_namespace_as_themselves() {
        let contained = parse_proc_map("0 1000 1\n1 100000 65536\n");
        assert_eq!(
            IdMap::identity_of(&contained).to_string(),
            "0:0:1,1:1:65536"
        );
        assert_eq!(
            IdMap::identity_of(&parse_proc_map("0 1000 1\n")).to_string(),
            "0:0:1"
        );
        assert_eq!(
            IdMap::identity_of(&parse_proc_map("5 7 3\n0 1000 2\n")).to_string(),
            "0:0:1,1:1:1,5:5:3"
        );
    }

    #[test]
    fn roots_block_is_free_of_every_id_the_host_gives_out() {
        let empty = HostIds::parse("", "", "", "");
        assert_eq!(root_block(&empty).unwrap(), 0x7000_0000);
        // Accounts, groups and subordinate ranges below the search leave it where it is.
        let usual = HostIds::parse(
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
            "root:x:0:\nshadow:x:42:\n",
            "user:100000:65536\n",
            "user:100000:65536\n",
        );
        assert_eq!(root_block(&usual).unwrap(), 1879048192);
        // An account in the block, a group, or a range reaching into it moves it on.
        let account = HostIds::parse("big:x:1879048200:1::/:/bin/sh\n", "", "", "");
        assert_eq!(root_block(&account).unwrap(), 0x7001_0000);
        let group = HostIds::parse("", "last:x:1879113727:\n", "", "");
        assert_eq!(root_block(&group).unwrap(), 0x7001_0000);
        let next = HostIds::parse("", "next:x:1879113728:\n", "", "");
        assert_eq!(root_block(&next).unwrap(), 0x7000_0000);
        let range = HostIds::parse("", "", "", "other:1879000000:200000\n");
        assert_eq!(root_block(&range).unwrap(), 0x7003_0000);
        // No block left.
        let all = HostIds::parse("", "", "other:1879048192:268304384\n", "");
        let err = format!("{:#}", root_block(&all).unwrap_err());
        assert!(err.contains("usermod --add-subuids"), "{err}");
        let almost = HostIds::parse("", "", "other:1879048192:268238848\n", "");
        assert_eq!(root_block(&almost).unwrap(), 0x7FFD_0000);
    }

    #[test]
    fn roots_own_ranges_start_at_container_0_without_host_root() {
        assert_eq!(
            IdMap::through(&[(200000, 65536), (500000, 10)])
                .unwrap()
                .to_string(),
            "0:200000:65536,65536:500000:10"
        );
        // A range holding host root is never used.
        assert_eq!(
            IdMap::through(&[(0, 65536), (300000, 5)])
                .unwrap()
                .to_string(),
            "0:300000:5"
        );
        assert!(IdMap::through(&[(0, 65536)]).is_none());
        assert!(IdMap::through(&[]).is_none());
        // A line past the last ID is cut there; one beyond it is skipped.
        assert_eq!(
            IdMap::through(&[(4294967295, 1), (4294967290, 100)])
                .unwrap()
                .to_string(),
            "0:4294967290:5"
        );
    }

    #[test]
    fn root_must_be_mapped() {
        let err = IdMaps::from_args(Some("1:1000:1".parse().unwrap()), None).unwrap_err();
        assert_eq!(
            format!("{err}"),
            "uid map 1:1000:1: container uid 0 is not mapped"
        );
    }
}
