//! A transient scope of systemd's, made through its D-Bus API: StartTransientUnit with the
//! scope's properties and the processes it holds from the start, then the job waited for, as
//! systemd-run --scope and the other runtimes do; and stopped the same way (StopUnit). The
//! caller says what the scope is; this module only talks to systemd.
//!
//! The D-Bus client (zbus) may start threads, and a process that has had a second thread can
//! no longer create a user namespace. So the client lives only in a helper process forked for
//! it, which does nothing else and ends once its job is done: the caller stays single-threaded.
//! The helper is forked before the caller joins any namespace (it reaches the bus from the
//! caller's own), connects at once, so that an unreachable bus is known before anything is
//! made, and then waits for the PID to put in the scope.
//!
//! It never changes a cgroup itself, and makes no scope without a PID.

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long systemd gets to connect, and to finish the scope's job.
const PATIENCE: Duration = Duration::from_secs(30);

/// A value of a unit property, in the D-Bus types systemd takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Str(String),
    U64(u64),
    U32(u32),
    I64(i64),
    I32(i32),
}

/// What the scope is: its unit name, which systemd (the system's, or the caller's own user
/// manager) makes it, and its properties (PIDs are added when the process is known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub unit: String,
    pub user_manager: bool,
    pub properties: Vec<(String, Value)>,
}

/// A helper connected to systemd, waiting for the process to put in the scope. Dropped
/// unused, it ends without making anything.
pub struct PendingScope {
    helper: Option<Pid>,
    to_helper: Option<File>,
    from_helper: File,
    unit: String,
}

impl PendingScope {
    /// Forks the helper and returns once it is connected to systemd's bus, or with why it is
    /// not. The caller must be single-threaded (see the module's documentation).
    pub fn connect(request: &Request) -> Result<PendingScope> {
        let (from_caller, to_helper) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        let (helper, from_helper) = {
            let from_caller = &from_caller;
            fork_helper(|to_caller| helper(request, from_caller.try_clone()?, to_caller))?
        };
        drop(from_caller);
        let mut scope = PendingScope {
            helper: Some(helper),
            to_helper: Some(File::from(to_helper)),
            from_helper,
            unit: request.unit.clone(),
        };
        match answer(&mut scope.from_helper)? {
            Answer::Ready(_) => Ok(scope),
            Answer::Failed(why) => bail!("{why}"),
        }
    }

    /// Has systemd make the scope with `pid` in it and waits for the job to end. Returns the
    /// process's /proc/PID/cgroup then, as read from the helper's cgroup namespace (the
    /// caller's before it joined any), where systemd's paths are.
    pub fn start(mut self, pid: i32) -> Result<String> {
        let mut to_helper = self.to_helper.take().expect("taken only here");
        to_helper
            .write_all(format!("{pid}\n").as_bytes())
            .context("writing to the helper that talks to systemd")?;
        drop(to_helper);
        let answer = answer(&mut self.from_helper);
        if let Some(helper) = self.helper.take() {
            reap(helper, &answer);
        }
        match answer? {
            Answer::Ready(cgroups) => Ok(cgroups),
            Answer::Failed(why) => bail!("making the scope {}: {why}", self.unit),
        }
    }
}

impl Drop for PendingScope {
    fn drop(&mut self) {
        if let Some(helper) = self.helper.take() {
            crate::process::kill_and_reap(helper);
        }
    }
}

/// Forks a helper running `body` with the write end of a pipe to the caller, and returns it
/// with the pipe's read end. Nothing is left for it to do once the caller is gone: it goes too.
fn fork_helper(body: impl FnOnce(File) -> Result<i32>) -> Result<(Pid, File)> {
    let (from_helper, to_caller) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
    let helper = {
        let to_caller = &to_caller;
        crate::process::spawn(0, move || {
            // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no pointer.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            body(File::from(to_caller.try_clone()?))
        })
        .context("forking the helper that talks to systemd")?
    };
    drop(to_caller);
    Ok((helper, File::from(from_helper)))
}

/// Reaps the helper once its answer came; ends it first if none came in time (it may still
/// be waiting for systemd).
fn reap(helper: Pid, answered: &Result<Answer>) {
    match answered {
        Ok(_) => {
            let _ = crate::process::wait(helper);
        }
        Err(_) => crate::process::kill_and_reap(helper),
    }
}

/// The helper's next line, within [`PATIENCE`].
fn answer(from_helper: &mut File) -> Result<Answer> {
    let deadline = Instant::now() + PATIENCE;
    let mut text = Vec::new();
    loop {
        if let Some(end) = text.iter().position(|b| *b == b'\n') {
            return Ok(Answer::parse(&String::from_utf8_lossy(&text[..end])));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(from_helper.as_fd(), PollFlags::POLLIN)];
        let ready = poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO),
        );
        match ready {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(anyhow!("waiting for systemd: {e}")),
            Ok(0) => bail!(
                "systemd did not answer within {} seconds",
                PATIENCE.as_secs()
            ),
            Ok(_) => {}
        }
        let mut chunk = [0u8; 512];
        let n = from_helper
            .read(&mut chunk)
            .context("reading from the helper that talks to systemd")?;
        if n == 0 {
            bail!("the helper that talks to systemd ended without an answer");
        }
        text.extend_from_slice(&chunk[..n]);
    }
}

/// Has systemd stop the scope `unit` of the system's manager (or, with `user_manager`, of the
/// caller's own) and waits for the job: systemd ends what is left in it and removes its
/// cgroup, and forgets the unit. A unit systemd no longer has has ended already. The client
/// runs in a helper forked for it, as for [`PendingScope`].
pub fn stop(unit: &str, user_manager: bool) -> Result<()> {
    let (helper, mut from_helper) = fork_helper(|mut to_caller| {
        let stopped = Manager::connect(user_manager).and_then(|m| m.stop_unit(unit));
        let _ = to_caller.write_all(Answer::line(stopped.as_ref().map(|()| "")).as_bytes());
        Ok(if stopped.is_ok() { 0 } else { 1 })
    })?;
    let answered = answer(&mut from_helper);
    reap(helper, &answered);
    match answered? {
        Answer::Ready(_) => Ok(()),
        Answer::Failed(why) => bail!("stopping the scope {unit}: {why}"),
    }
}

/// A line from the helper: ready (connected; or the scope made, with the process's
/// /proc/PID/cgroup), or why not.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ready(String),
    Failed(String),
}

impl Answer {
    fn parse(line: &str) -> Answer {
        match line.strip_prefix("error: ") {
            Some(why) => Answer::Failed(why.to_string()),
            None if line == "ready" => Answer::Ready(String::new()),
            None => match line
                .strip_prefix("ready ")
                .map(serde_json::from_str::<String>)
            {
                Some(Ok(text)) => Answer::Ready(text),
                _ => Answer::Failed(format!("unexpected answer {line:?}")),
            },
        }
    }

    fn line(result: Result<&str, &anyhow::Error>) -> String {
        match result {
            Ok("") => "ready\n".to_string(),
            // A JSON string: one line whatever the text holds.
            Ok(text) => format!("ready {}\n", serde_json::Value::from(text)),
            // one_line escapes what could break the line.
            Err(e) => format!("error: {}\n", crate::errors::one_line(e)),
        }
    }
}

/// The helper's side: connect, say so, wait for the PID, make the scope, say how it went.
fn helper(request: &Request, from_caller: OwnedFd, mut to_caller: File) -> Result<i32> {
    let connected = Manager::connect(request.user_manager);
    let _ = to_caller.write_all(Answer::line(connected.as_ref().map(|_| "")).as_bytes());
    let Ok(manager) = connected else {
        return Ok(1);
    };
    // One line, not to the end: the caller's children (the container's process, until it
    // execs) hold copies of the pipe's write end.
    let mut text = Vec::new();
    let mut from_caller = File::from(from_caller);
    let mut byte = [0u8; 1];
    while !text.ends_with(b"\n") && matches!(from_caller.read(&mut byte), Ok(1)) {
        text.push(byte[0]);
    }
    let Ok(pid) = String::from_utf8_lossy(&text).trim().parse::<u32>() else {
        // The caller gave up: no scope.
        return Ok(0);
    };
    let made = manager.start_scope(request, pid).and_then(|()| {
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .with_context(|| format!("reading /proc/{pid}/cgroup"))
    });
    let _ = to_caller.write_all(Answer::line(made.as_deref()).as_bytes());
    Ok(if made.is_ok() { 0 } else { 1 })
}

/// systemd's manager object on a bus connection, with the job signals subscribed to.
struct Manager {
    proxy: zbus::blocking::Proxy<'static>,
    jobs: zbus::blocking::proxy::SignalIterator<'static>,
}

impl Manager {
    fn connect(user_manager: bool) -> Result<Manager> {
        let builder = if user_manager {
            zbus::blocking::connection::Builder::session()
        } else {
            zbus::blocking::connection::Builder::system()
        }
        .map_err(|e| anyhow!("{e}"))?;
        let connection = builder
            .method_timeout(PATIENCE)
            .build()
            .map_err(|e| anyhow!("connecting to the bus: {e}"))?;
        let proxy =
            zbus::blocking::proxy::Builder::<zbus::blocking::Proxy<'static>>::new(&connection)
                .destination("org.freedesktop.systemd1")?
                .path("/org/freedesktop/systemd1")?
                .interface("org.freedesktop.systemd1.Manager")?
                .cache_properties(zbus::proxy::CacheProperties::No)
                .build()
                .map_err(|e| anyhow!("{e}"))?;
        // Subscribed to before the job exists, so that its end cannot be missed.
        let jobs = proxy
            .receive_signal("JobRemoved")
            .map_err(|e| anyhow!("{e}"))?;
        // Some systemd versions send job signals only to subscribers.
        let _: zbus::Result<()> = proxy.call("Subscribe", &());
        Ok(Manager { proxy, jobs })
    }

    fn start_scope(mut self, request: &Request, pid: u32) -> Result<()> {
        let mut properties: Vec<(&str, zbus::zvariant::Value)> = request
            .properties
            .iter()
            .map(|(name, value)| (name.as_str(), dbus_value(value)))
            .collect();
        properties.push(("PIDs", zbus::zvariant::Value::from(vec![pid])));
        let auxiliary: Vec<(&str, Vec<(&str, zbus::zvariant::Value)>)> = Vec::new();
        let job: zbus::zvariant::OwnedObjectPath = self
            .proxy
            .call(
                "StartTransientUnit",
                &(request.unit.as_str(), "fail", properties, auxiliary),
            )
            .map_err(|e| anyhow!("{e}"))?;
        self.wait_for(&job)
    }

    fn stop_unit(mut self, unit: &str) -> Result<()> {
        let job: zbus::Result<zbus::zvariant::OwnedObjectPath> =
            self.proxy.call("StopUnit", &(unit, "replace"));
        match job {
            Ok(job) => self.wait_for(&job),
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(())
            }
            Err(e) => Err(anyhow!("{e}")),
        }
    }

    /// Waits for the JobRemoved signal of `job`: fine if its result is "done".
    fn wait_for(&mut self, job: &zbus::zvariant::OwnedObjectPath) -> Result<()> {
        for signal in &mut self.jobs {
            let (_, path, unit, result): (u32, zbus::zvariant::OwnedObjectPath, String, String) =
                signal
                    .body()
                    .deserialize()
                    .map_err(|e| anyhow!("reading systemd's JobRemoved: {e}"))?;
            if &path == job {
                if result == "done" {
                    return Ok(());
                }
                bail!("systemd's job for {unit} ended {result:?}");
            }
        }
        bail!("the bus connection closed before systemd's job ended")
    }
}

fn dbus_value(value: &Value) -> zbus::zvariant::Value<'_> {
    use zbus::zvariant::Value as V;
    match value {
        Value::Bool(b) => V::from(*b),
        Value::Str(s) => V::from(s.as_str()),
        Value::U64(n) => V::from(*n),
        Value::U32(n) => V::from(*n),
        Value::I64(n) => V::from(*n),
        Value::I32(n) => V::from(*n),
    }
}

/// A property value in GVariant's text form, as engines give them in `org.systemd.property.`
/// annotations: `true`, `false`, a quoted string, or a number with its type
/// (`uint64 123`; a bare number is an int32, as in GVariant).
pub fn parse_value(text: &str) -> Result<Value> {
    let text = text.trim();
    let number = |digits: &str| digits.trim().to_string();
    Ok(match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ if text.len() >= 2
            && ((text.starts_with('\'') && text.ends_with('\''))
                || (text.starts_with('"') && text.ends_with('"'))) =>
        {
            Value::Str(text[1..text.len() - 1].to_string())
        }
        _ => {
            let (kind, digits) = text.split_once(' ').unwrap_or(("int32", text));
            let digits = number(digits);
            let bad = || anyhow!("{text:?} is not a value this runtime passes to systemd");
            match kind {
                "uint64" | "@t" => Value::U64(digits.parse().map_err(|_| bad())?),
                "uint32" | "@u" => Value::U32(digits.parse().map_err(|_| bad())?),
                "int64" | "@x" => Value::I64(digits.parse().map_err(|_| bad())?),
                "int32" | "@i" => Value::I32(digits.parse().map_err(|_| bad())?),
                _ => return Err(bad()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gvariant_text_values_parse_to_their_dbus_types() {
        assert_eq!(parse_value("true").unwrap(), Value::Bool(true));
        assert_eq!(parse_value(" false ").unwrap(), Value::Bool(false));
        assert_eq!(
            parse_value("'inactive-or-failed'").unwrap(),
            Value::Str("inactive-or-failed".into())
        );
        assert_eq!(parse_value("\"x y\"").unwrap(), Value::Str("x y".into()));
        assert_eq!(
            parse_value("uint64 123456789").unwrap(),
            Value::U64(123456789)
        );
        assert_eq!(parse_value("@t 5").unwrap(), Value::U64(5));
        assert_eq!(parse_value("uint32 7").unwrap(), Value::U32(7));
        assert_eq!(parse_value("int64 -2").unwrap(), Value::I64(-2));
        assert_eq!(parse_value("12").unwrap(), Value::I32(12));
        for bad in ["", "'open", "uint64 -1", "double 1.5", "[1, 2]", "yes"] {
            assert!(parse_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn helper_lines_carry_readiness_and_reasons() {
        assert_eq!(Answer::parse("ready"), Answer::Ready(String::new()));
        let cgroups = "1:name=systemd:/a.slice/b \"c\".scope\n0::/a.slice/b.scope\n";
        let line = Answer::line(Ok(cgroups));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert_eq!(
            Answer::parse(line.trim_end()),
            Answer::Ready(cgroups.to_string())
        );
        assert_eq!(
            Answer::parse(Answer::line(Err(&anyhow!("no\nbus"))).trim_end()),
            Answer::Failed("no\\nbus".into())
        );
        assert!(matches!(Answer::parse("garbage"), Answer::Failed(_)));
    }
}
