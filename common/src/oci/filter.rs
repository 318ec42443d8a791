//! config.json's `linux.seccomp` for the container's processes: compiled by
//! [`crate::seccomp`] before the fork, loaded in the process as runc orders it. Without
//! no_new_privs the filter goes in while the process still holds CAP_SYS_ADMIN, before its
//! capabilities are dropped (the profile must then allow what follows: setresuid, capset,
//! execve); with no_new_privs it goes in last, right before exec.

use crate::caps::Credentials;
use crate::seccomp::Filter;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxSeccomp;

/// The compiled profile, if config.json has one.
pub fn compile(profile: Option<&LinuxSeccomp>) -> Result<Option<Filter>> {
    let Some(profile) = profile else {
        return Ok(None);
    };
    let filter = Filter::compile(profile).context("linux.seccomp")?;
    if filter.has_listener() {
        bail!("linux.seccomp: SCMP_ACT_NOTIFY (a listener) is not supported by this runtime");
    }
    for warning in filter.warnings() {
        super::log::debug(&format!("linux.seccomp: {warning}"));
    }
    Ok(Some(filter))
}

/// Applies the credentials and loads the filter, in runc's order.
pub fn lock_down(creds: &Credentials, filter: Option<&Filter>) -> Result<()> {
    match filter {
        Some(filter) if !creds.no_new_privs => {
            filter.load(false)?;
            creds.apply()
        }
        Some(filter) => {
            creds.apply()?;
            filter.load(true).map(drop)
        }
        None => creds.apply(),
    }
}
