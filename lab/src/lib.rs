//! A thin, declarative network-namespace lab: a topology file (TOML) becomes
//! namespaces, veth pairs, user-space wires with delay/jitter/loss, LAN
//! bridges, FRR daemons per node and our own daemons; and all of it goes away
//! again on `down`, on drop, on panic and on Ctrl-C.
//!
//! ```no_run
//! use std::time::Duration;
//! let topo = lab::Topology::from_file("lab/topologies/ospf3.toml")?;
//! let lab = lab::Lab::up(topo)?;
//! lab.wait_ospf_full("r2", 2usize, Duration::from_secs(30))?;
//! lab.wait_route("r1", "192.0.2.3/32", Duration::from_secs(30))?;
//! println!("{}", lab.vtysh("r1", "show ip ospf neighbor")?);
//! # anyhow::Ok(())
//! ```

pub mod addr;
pub mod cleanup;
pub mod frr;
mod lab;
pub mod netns;
pub mod ping;
pub mod procs;
mod signals;
pub mod state;
pub mod status;
mod sys;
pub mod topology;
pub mod wait;
pub mod wire;

pub use addr::Cidr;
pub use cleanup::{Report, leftovers};
pub use lab::{
    Lab, OspfNeighbors, Spawned, UpOptions, cleanup_lab, ensure_root, unavailable, wire_args,
};
pub use ping::PingStats;
pub use state::RunState;
pub use status::Status;
pub use topology::{Topology, TopologyError};
pub use wait::{Check, WaitTimeout, wait_for, wait_until};
pub use wire::{Wire, WireSpec, WireStats};
