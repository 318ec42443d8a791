//! Hook commands the user gives to run at fixed points of a container's start.

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// Runs `script` with `/bin/sh -c` in `cwd`, with `env` added to the inherited environment,
/// and fails unless it exits 0. `what` names the hook in messages (`-i hook`).
pub fn run(what: &str, script: &str, cwd: &Path, env: &[(&str, String)]) -> Result<()> {
    run_in_group(what, script, cwd, env, None)
}

/// [`run`] in the process group `group` (an existing one, in the caller's session), so that
/// whoever holds the group can end the hook and everything it left running.
pub fn run_in_group(
    what: &str,
    script: &str,
    cwd: &Path,
    env: &[(&str, String)],
    group: Option<Pid>,
) -> Result<()> {
    let mut command = Command::new("/bin/sh");
    if let Some(group) = group {
        command.process_group(group.as_raw());
    }
    let status = command
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .status()
        .with_context(|| format!("{what}: running /bin/sh"))?;
    if !status.success() {
        match crate::process::exit_code_of(status) {
            Some(code) => bail!("{what} '{script}' failed with status {code}"),
            None => bail!("{what} '{script}' failed: {status}"),
        }
    }
    Ok(())
}
