//! The environment a container's command starts with, for contain and inject alike: what the
//! tool sets, what the caller adds (`-e NAME[=VALUE]`, `--env-file FILE`), and HOME and USER of
//! the user inside, from the container's /etc/passwd.
//!
//! Nothing of the caller's environment passes unless named: root's tokens and cloud
//! credentials would otherwise be readable by the container's processes through
//! /proc/PID/environ. The host's sandbox (`contain --tmp-overlay /`) is the one exception: a
//! person sandboxing their own shell expects their HOME, USER, LANG, TERM and PATH there, but
//! never what points at their sessions (the display, D-Bus, the SSH agent, the runtime
//! directory), which would lead nowhere or out.

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, Mode, SFlag};
use std::io::Read;
use std::path::Path;

/// Variables as NAME and VALUE, in the order set; set() keeps each NAME once.
pub type Environment = Vec<(String, String)>;

/// One `-e NAME[=VALUE]`: without a VALUE, the caller's own value of NAME (none if unset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: Option<String>,
}

/// The largest --env-file and /etc/passwd read: both are small text files.
const MAX_FILE: u64 = 1 << 20;

/// The caller's variables a host's sandbox starts with (and LC_* besides).
const SANDBOX_KEEPS: [&str; 10] = [
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "TZ",
];

/// Parses `NAME[=VALUE]` (the value of `-e`): NAME is not empty and holds no NUL.
pub fn parse_assignment(text: &str) -> Result<Assignment, String> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (text, None),
    };
    if name.is_empty() {
        return Err("the variable's NAME is empty".into());
    }
    if text.contains('\0') {
        return Err("holds a NUL byte".into());
    }
    Ok(Assignment {
        name: name.to_string(),
        value,
    })
}

impl Assignment {
    /// NAME and VALUE, the value from the caller's environment when none was given; None
    /// when it was not given and the caller has no such variable (it is left out, as
    /// `podman run -e NAME` does).
    pub fn resolve(&self) -> Result<Option<(String, String)>> {
        let value = match &self.value {
            Some(value) => value.clone(),
            None => match std::env::var_os(&self.name) {
                Some(value) => value.into_string().map_err(|_| {
                    anyhow!(
                        "-e {}: the caller's value is not UTF-8",
                        crate::errors::printable(&self.name)
                    )
                })?,
                None => return Ok(None),
            },
        };
        Ok(Some((self.name.clone(), value)))
    }
}

/// Reads a small regular file, without blocking on a FIFO or reading a device without end.
fn read_small_file(path: &Path, follow_links: bool) -> Result<String> {
    let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    if !follow_links {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| anyhow!("{}", e.desc()))?;
    let stat = fstat(&fd).map_err(|e| anyhow!("{}", e.desc()))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        bail!("not a regular file");
    }
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_FILE + 1)
        .read_to_end(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        bail!("larger than {MAX_FILE} bytes");
    }
    String::from_utf8(text).map_err(|_| anyhow!("not UTF-8 text"))
}

/// The assignments of an `--env-file`: one `NAME=VALUE` or `NAME` a line, as `-e` takes them
/// (the value taken literally, quotes included); blank lines and lines starting with `#` are
/// skipped. Read as the caller, before anything starts.
pub fn read_env_file(path: &Path) -> Result<Vec<Assignment>> {
    let shown = || format!("--env-file {}", crate::errors::shown_os(path.as_os_str()));
    let text = read_small_file(path, true).with_context(shown)?;
    let mut assignments = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let assignment = parse_assignment(line)
            .map_err(|why| anyhow!("{}: line {}: {why}", shown(), number + 1))?;
        assignments.push(assignment);
    }
    Ok(assignments)
}

/// The caller's variables, from `--env-file` files (in order) and then `-e` (in order), to be
/// set over the tool's own: a later one wins.
pub fn from_options(files: &[std::path::PathBuf], options: &[Assignment]) -> Result<Environment> {
    let mut env = Environment::new();
    for file in files {
        for assignment in read_env_file(file)? {
            if let Some((name, value)) = assignment.resolve()? {
                set(&mut env, &name, value);
            }
        }
    }
    for assignment in options {
        if let Some((name, value)) = assignment.resolve()? {
            set(&mut env, &name, value);
        }
    }
    Ok(env)
}

/// Sets `name` to `value`, replacing an earlier value.
pub fn set(env: &mut Environment, name: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some((_, old)) => *old = value,
        None => env.push((name.to_string(), value)),
    }
}

/// Sets `name` unless it is set already.
pub fn set_default(env: &mut Environment, name: &str, value: impl Into<String>) {
    if !env.iter().any(|(k, _)| k == name) {
        env.push((name.to_string(), value.into()));
    }
}

/// Sets every variable of `over`, replacing earlier values.
pub fn extend(env: &mut Environment, over: &Environment) {
    for (name, value) in over {
        set(env, name, value.clone());
    }
}

/// The host's sandbox: the caller's identity, locale, terminal and PATH, nothing else.
pub fn host_sandbox() -> Environment {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| SANDBOX_KEEPS.contains(&k.as_str()) || k.starts_with("LC_"))
        .collect()
}

/// The name and home directory of `uid` in the /etc/passwd of the current root (the
/// container's, once inside): for root without an entry, root and /root; for another user
/// without one, no name and `/`.
pub fn user_inside(uid: u32) -> (Option<String>, String) {
    let passwd = read_small_file(Path::new("/etc/passwd"), true).unwrap_or_default();
    let entry = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse() == Ok(uid))
            .then(|| (fields[0].to_string(), fields[5].to_string()))
    });
    match entry {
        Some((name, home)) if !home.is_empty() => (Some(name), home),
        Some((name, _)) => (Some(name), "/".into()),
        None if uid == 0 => (Some("root".into()), "/root".into()),
        None => (None, "/".into()),
    }
}

/// Sets HOME and USER of `uid` inside (see [`user_inside`]) unless they are set already.
pub fn set_user_defaults(env: &mut Environment, uid: u32) {
    let (name, home) = user_inside(uid);
    set_default(env, "HOME", home);
    if let Some(name) = name {
        set_default(env, "USER", name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(name: &str, value: Option<&str>) -> Assignment {
        Assignment {
            name: name.into(),
            value: value.map(String::from),
        }
    }

    #[test]
    fn parses_name_and_value() {
        assert_eq!(parse_assignment("A=1"), Ok(assignment("A", Some("1"))));
        assert_eq!(parse_assignment("A=b=c"), Ok(assignment("A", Some("b=c"))));
        assert_eq!(parse_assignment("A="), Ok(assignment("A", Some(""))));
        assert_eq!(parse_assignment("A"), Ok(assignment("A", None)));
        assert!(parse_assignment("=1").is_err());
        assert!(parse_assignment("").is_err());
    }

    #[test]
    fn a_name_alone_takes_the_callers_value_or_nothing() {
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            assignment("PATH", None).resolve().unwrap(),
            Some(("PATH".into(), path))
        );
        let unset = assignment("CONTAIN_TEST_SURELY_UNSET", None);
        assert_eq!(unset.resolve().unwrap(), None);
    }

    #[test]
    fn env_files_skip_comments_and_blank_lines_and_later_values_win() {
        let dir = std::env::temp_dir().join(format!("contain-env-test.{}", std::process::id()));
        std::fs::write(&dir, "# comment\n\nA=1\n  B=two words\nA=3\nC=\"quoted\"\n").unwrap();
        let env =
            from_options(std::slice::from_ref(&dir), &[assignment("B", Some("cli"))]).unwrap();
        std::fs::remove_file(&dir).unwrap();
        let expected: Environment = [("A", "3"), ("B", "cli"), ("C", "\"quoted\"")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec();
        assert_eq!(env, expected);
    }

    #[test]
    fn a_bad_env_file_line_is_named() {
        let dir = std::env::temp_dir().join(format!("contain-env-bad.{}", std::process::id()));
        std::fs::write(&dir, "A=1\n=x\n").unwrap();
        let err = read_env_file(&dir).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(
            crate::errors::one_line(&err),
            format!(
                "--env-file {}: line 2: the variable's NAME is empty",
                dir.display()
            )
        );
    }

    #[test]
    fn the_sandbox_keeps_no_session_variables() {
        // The test process's own environment: whatever it holds, none of these pass.
        let env = host_sandbox();
        for session in ["DISPLAY", "XAUTHORITY", "SSH_AUTH_SOCK", "XDG_RUNTIME_DIR"] {
            assert!(env.iter().all(|(k, _)| k != session), "{session} passed");
        }
    }
}
