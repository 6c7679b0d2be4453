//! Stage 5, the executor: the only code that makes setup system calls.
//!
//! The supervisor runs the plan's host steps ([`host`]); the jail's init runs
//! its jail steps ([`jail`]) through the [`kernel::Kernel`] seam. Every
//! command reads its definition files through [`definition`].

pub mod bpf;
pub mod bundle;
pub mod definition;
pub mod host;
pub mod hostpath;
pub mod jail;
pub mod kernel;
pub mod logfile;
pub mod memory;
pub mod net;
pub mod owner;
pub mod privs;
pub mod probe;
pub mod raw;
pub mod reaper;
#[cfg(test)]
pub(crate) mod recorder;
pub mod setup;
pub mod spawn;
