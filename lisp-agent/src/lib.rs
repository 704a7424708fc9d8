//! lisp-agent: a LISP control plane (Map-Server, Map-Resolver, DDT node,
//! xTR) whose roles are switched on by configuration.
//!
//! Shape: one control-plane reactor thread owns all protocol state and the
//! UDP 4342 sockets (batched I/O, timers); role modules (`ms`, `mr`, `ddt`,
//! `xtr`) hold their state and handlers; the gRPC API (`api`), metrics and
//! signal handling run on tokio and reach the reactor only through
//! [`control::handle::ReactorHandle`].

pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod ddt;
pub mod discovery;
pub mod mapping;
pub mod metrics;
pub mod mr;
pub mod ms;
pub mod msx;
pub mod stats;
pub mod sync;
pub mod xtr;
