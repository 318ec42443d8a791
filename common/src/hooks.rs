//! Hook commands the user gives to run at fixed points of a container's start.
//!
//! It must not put text of its own around the user's: the hook is the one argument of `/bin/sh -c`,
//! never part of a command line we build.

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};

/// Runs `script` with `/bin/sh -c` in `cwd`, with `env` added to the inherited environment,
/// and fails unless it exits 0. `what` names the hook in messages (`-i hook`).
pub fn run(what: &str, script: &str, cwd: &Path, env: &[(&str, String)]) -> Result<()> {
    let status = command(script, cwd, env)
        .status()
        .with_context(|| format!("{what}: running /bin/sh"))?;
    check(what, script, status)
}

/// Starts `script` like [`run`], in the process group `group` (an existing one, in the
/// caller's session), so that whoever holds the group can end the hook with whatever it
/// started: when the start is given up, and when the tool ends; [`check`] its status once it
/// has ended.
pub fn start(
    what: &str,
    script: &str,
    cwd: &Path,
    env: &[(&str, String)],
    group: Pid,
) -> Result<Child> {
    command(script, cwd, env)
        .process_group(group.as_raw())
        .spawn()
        .with_context(|| format!("{what}: running /bin/sh"))
}

fn command(script: &str, cwd: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// Fails unless the hook `script` ended with status 0.
pub fn check(what: &str, script: &str, status: ExitStatus) -> Result<()> {
    if !status.success() {
        match crate::process::exit_code_of(status) {
            Some(code) => bail!("{what} '{script}' failed with status {code}"),
            None => bail!("{what} '{script}' failed: {status}"),
        }
    }
    Ok(())
}
