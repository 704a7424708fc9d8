//! The control-plane reactor: sockets, timers and dispatch to the roles.

pub mod ctx;
pub mod handle;
pub mod io;
pub mod reactor;
