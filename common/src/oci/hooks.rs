//! OCI hooks: programs the engine names in config.json, run at fixed points of a container's
//! life with the container's state as JSON on their stdin, each within its timeout.

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs each hook in order with `state` on stdin; the first that fails (or outlives its
/// timeout, and is killed) ends the run with an error naming `stage` and the hook.
pub fn run(stage: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    let input = state.to_string();
    for (i, hook) in hooks.iter().enumerate() {
        run_one(hook, &input)
            .with_context(|| format!("hooks.{stage}[{i}] ({})", hook.path().display()))?;
    }
    Ok(())
}

/// Runs every hook in order with `state` on stdin, as poststart and poststop hooks are run: a
/// hook that fails is a warning (one line naming `stage` and the hook), and the others still
/// run (runtime-spec, "Lifecycle").
pub fn run_warning(stage: &str, hooks: &[Hook], state: &serde_json::Value) {
    let input = state.to_string();
    for (i, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(hook, &input)
            .with_context(|| format!("hooks.{stage}[{i}] ({})", hook.path().display()))
        {
            super::log::warn(&crate::errors::one_line(&e));
        }
    }
}

fn run_one(hook: &Hook, input: &str) -> Result<()> {
    let mut command = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            command.arg0(first).args(rest);
        }
    }
    command.env_clear();
    for var in hook.env().iter().flatten() {
        if let Some((name, value)) = var.split_once('=') {
            command.env(name, value);
        }
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("running it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state closes the pipe: that is no failure.
        let _ = stdin.write_all(input.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            return Err(match crate::process::exit_code_of(status) {
                Some(code) => anyhow!("failed with status {code}"),
                None => anyhow!("failed: {status}"),
            });
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out after {} seconds", hook.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
