//! Signals as `kill` takes them: a number, or a name with or without `SIG`, any case
//! (`9`, `KILL`, `SIGKILL`, `term`, `RTMIN+3`).

use anyhow::{bail, Result};
use std::str::FromStr;

/// The signal number `text` names.
pub fn parse(text: &str) -> Result<i32> {
    let refuse = || anyhow::anyhow!("unknown signal '{}'", crate::errors::printable(text));
    if let Ok(number) = text.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&number) {
            return Ok(number);
        }
        return Err(refuse());
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(offset) = name.strip_prefix("RTMIN") {
        let offset = match offset {
            "" => 0,
            _ => offset
                .strip_prefix('+')
                .and_then(|n| n.parse().ok())
                .ok_or_else(refuse)?,
        };
        let number = libc::SIGRTMIN() + offset;
        if number > libc::SIGRTMAX() {
            return Err(refuse());
        }
        return Ok(number);
    }
    if let Some(offset) = name.strip_prefix("RTMAX") {
        let offset: i32 = match offset {
            "" => 0,
            _ => offset
                .strip_prefix('-')
                .and_then(|n| n.parse().ok())
                .ok_or_else(refuse)?,
        };
        let number = libc::SIGRTMAX() - offset;
        if number < libc::SIGRTMIN() {
            return Err(refuse());
        }
        return Ok(number);
    }
    match nix::sys::signal::Signal::from_str(&format!("SIG{name}")) {
        Ok(signal) => Ok(signal as i32),
        Err(_) if name == "IOT" => Ok(libc::SIGABRT),
        Err(_) => bail!("{}", refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGTERM").unwrap(), 15);
        assert_eq!(parse("term").unwrap(), 15);
        assert_eq!(parse("RTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        for bad in ["0", "65", "-1", "FOO", "SIG", "RTMIN+99", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
