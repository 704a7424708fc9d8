//! frr-bgp-plugin: inter-domain discovery of LISP mapping systems through an
//! unpatched FRR bgpd (draft-boucadair-lisp-idr-ms-discovery).
//!
//! - [`bgp`]: a small BGP-4 speaker written for this job (codec with RFC 7606
//!   error handling, a pure FSM, TCP helpers). It peers iBGP with the local
//!   bgpd, originates the local Map-Server's EID prefixes tagged with the
//!   "LISP Mapping System Target" extended community and reads the community
//!   on the best paths bgpd sends back.
//! - [`zapi`]: a zebra API client (ZAPI 6, FRR 8.2-8.5): router-id,
//!   interfaces and addresses, nexthop tracking of discovered contacts.
//! - [`translate`]: BGP ⇄ the agent's API, pure.
//! - [`daemon`]: the event loop that ties them to lisp-agent.
//! - [`compat`]: IPv6 contacts in attribute 16 (FRR 8.4 drops attribute 25).
//! - [`frrconf`]: the bgpd snippet operators need (`print-frr-config`).

pub mod bgp;
pub mod compat;
pub mod config;
pub mod daemon;
pub mod frrconf;
pub mod translate;
pub mod zapi;
