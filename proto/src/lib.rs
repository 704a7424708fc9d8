//! Every wire format lisp-msx speaks, as plain values with `encode`/`decode`.
//! No sockets, no runtime, no global state: daemons, fuzzers and benchmarks
//! share exactly these codecs.
//!
//! - [`lisp`]: LISP control plane (RFC 9301, RFC 8111 referrals, RFC 9437
//!   bits), authentication, the data header (RFC 9300).
//! - [`msx`]: LISP-MSX extensions on the Shared Extension type
//!   (Map-Subscribe, Map-Bulk, Map-Solicit) and TCP framing.
//! - [`addr`]: AFI and LCAF addresses, EID prefixes.
//!
//! Decoders never panic and never allocate more than the input could hold;
//! errors are typed and name the offending field.

pub mod addr;
pub mod bgp;
pub mod cpnp;
pub mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod lisp;
pub mod msx;
pub mod ospf;
pub mod pcap;
pub mod wire;

pub use addr::{Addr, EidPrefix, InstanceId, LispAddr};
pub use error::{DecodeError, EncodeError};
pub use lisp::LispMessage;

/// The agent's control API (protobuf, `proto/api/lispmsx.proto`). With the
/// `grpc` feature it also holds the tonic client and server.
#[allow(clippy::all, clippy::pedantic)]
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/lispmsx.v1.rs"));
}
