//! The benchmark harness that `shardcast bench` (the CLI) and the criterion benches
//! (`benches/fanout.rs`, `benches/publish.rs`) share, so that both measure the same code:
//!
//! - [`cpu`]: the process CPU clock that rows are charged with;
//! - [`impls`]: the competitors, one function per library, each running one
//!   [`impls::Spec`] end to end and handing back raw timestamps;
//! - [`recv`]: every library's receiving end behind one trait, and the receive loop that
//!   every row runs, written once.
//!
//! Not published: it exists for the workspace's own measurements.

pub mod cpu;
pub mod impls;
pub mod recv;
