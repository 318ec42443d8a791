//! The pipe on which a process the runtime forks reports, once, that it is ready or why it
//! failed: so that its failure is the command's, told on the command's stderr and log.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// What a ready process writes.
const READY: &[u8] = b"\0ready";

/// Both ends, made before the fork.
pub struct ReportPipe {
    read: OwnedFd,
    write: OwnedFd,
}

/// The child's end, until it reports.
pub struct Reporter<'a>(Option<BorrowedFd<'a>>);

impl ReportPipe {
    pub fn new() -> Result<ReportPipe> {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
        Ok(ReportPipe { read, write })
    }

    /// The child's side, right after the fork: it closes its copy of the read end.
    pub fn child(&self) -> Reporter<'_> {
        // SAFETY: the child owns a copy of the descriptor table and ends with _exit, never
        // dropping its copy of `read`: closing the number here is the only close.
        unsafe { libc::close(self.read.as_raw_fd()) };
        Reporter(Some(self.write.as_fd()))
    }

    /// The parent's side, after the fork: waits for the report (end of file once every
    /// child holding the write end has reported or ended). Ok if the child said it is ready;
    /// its message, or `ended` when it said nothing, otherwise.
    pub fn wait(self, ended: &str) -> Result<()> {
        drop(self.write);
        let mut text = Vec::new();
        std::fs::File::from(self.read)
            .read_to_end(&mut text)
            .context("reading the process's report")?;
        if text == READY {
            return Ok(());
        }
        if text.is_empty() {
            bail!("{ended}");
        }
        bail!("{}", String::from_utf8_lossy(&text))
    }
}

impl Reporter<'_> {
    /// Says the process is ready, and closes the pipe.
    pub fn ready(&mut self) -> Result<()> {
        if let Some(fd) = self.0.take() {
            nix::unistd::write(fd, READY).context("reporting ready")?;
            close(fd);
        }
        Ok(())
    }

    /// Closes this copy of the write end without reporting (a process that forked the one
    /// that reports).
    pub fn close(&mut self) {
        if let Some(fd) = self.0.take() {
            close(fd);
        }
    }

    /// Reports `err` to the parent if it still waits; returns false once it has been told
    /// the process was ready (the error is then the process's own to show).
    pub fn failed(&mut self, err: &anyhow::Error) -> bool {
        match self.0.take() {
            Some(fd) => {
                let _ = nix::unistd::write(fd, crate::errors::one_line(err).as_bytes());
                close(fd);
                true
            }
            None => false,
        }
    }
}

fn close(fd: BorrowedFd<'_>) {
    // SAFETY: the child's copy of the write end, which nothing else in the child uses.
    unsafe { libc::close(fd.as_raw_fd()) };
}
