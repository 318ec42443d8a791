//! Where contain-oci's messages go: stderr always, and with `--log FILE` that file too, as
//! text lines or, with `--log-format json`, one `{"level","msg","time"}` object per line,
//! which podman and containerd read to show the user why the runtime failed.

use super::time::rfc3339;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The format of `--log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

struct Log {
    file: PathBuf,
    format: LogFormat,
    debug: bool,
}

static LOG: OnceLock<Log> = OnceLock::new();

/// Sends later messages to `file` as well (nothing when None).
pub fn init(file: Option<PathBuf>, format: LogFormat, debug: bool) {
    if let Some(file) = file {
        let _ = LOG.set(Log {
            file,
            format,
            debug,
        });
    }
}

/// Records an error in the log file (stderr gets it from errors::run_main).
pub fn error(message: &str) {
    write("error", message);
}

/// Records a debug message when `--debug` was given.
pub fn debug(message: &str) {
    if LOG.get().is_some_and(|log| log.debug) {
        write("debug", message);
    }
}

/// Records a warning in the log file and on stderr.
pub fn warn(message: &str) {
    crate::errors::warn(message);
    write("warning", message);
}

fn write(level: &str, message: &str) {
    let Some(log) = LOG.get() else {
        return;
    };
    let time = rfc3339(SystemTime::now());
    let line = match log.format {
        LogFormat::Json => {
            let object = serde_json::json!({ "level": level, "msg": message, "time": time });
            format!("{object}\n")
        }
        LogFormat::Text => format!(
            "time=\"{time}\" level={level} msg={}\n",
            serde_json::Value::from(message)
        ),
    };
    // One write(2) on an O_APPEND file: lines of concurrent commands do not interleave.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log.file)
    {
        let _ = file.write_all(line.as_bytes());
    }
}
