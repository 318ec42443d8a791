//! The OCI runtime: what `contain-oci` does for engines (podman through conmon, containerd's
//! runc shim) that drive runtimes through runc's command line and the OCI bundle format
//! (`config.json` and a root file system, runtime-spec 1.x).
//!
//! One more flow over the modules contain uses: the container's process is made by
//! [`crate::userns`] and [`crate::process`], its root by [`crate::mount`], its lock-down by
//! [`crate::caps`], its namespaces joined through [`crate::ns`].

pub mod bundle;
pub mod cgroups;
pub mod create;
pub mod documents;
pub mod exec;
pub mod filter;
pub mod hooks;
pub mod inspect;
pub mod labels;
pub mod lifecycle;
pub mod log;
pub mod mounts;
pub mod report;
pub mod signal;
pub mod state;
pub mod terminal;
pub mod time;
