//! The shared crate of contain, pseudo and inject. All unsafe code of the project lives here.
//!
//! Each module owns one concern, says so in its opening comment, and never reaches back into the
//! binaries; docs/architecture.md maps them.

pub mod binds;
pub mod caps;
pub mod cgroup;
pub mod chroot;
pub mod cli;
pub mod console;
pub mod container;
pub mod container_cgroup;
pub mod display;
pub mod enter;
pub mod environment;
pub mod errors;
pub mod hooks;
pub mod idmap;
pub mod keyring;
pub mod manual;
pub mod mount;
pub mod net;
pub mod ns;
pub mod oci;
pub mod overlay;
pub mod process;
pub mod registry;
pub mod seccomp;
pub mod session;
pub mod supervise;
pub mod systemd;
pub mod systemd_scope;
pub mod userns;
pub mod watchdog;
