//! The shared crate of contain, pseudo and inject. All unsafe code of the project lives here.

pub mod errors;
pub mod idmap;
pub mod ns;
pub mod process;
pub mod supervise;
pub mod userns;
