//! ospf-msfd: intra-domain discovery of LISP Map-Servers and Map-Resolvers.
//! It originates the MSFD TLV (draft-boucadair-lisp-function-discovery) in an
//! area-scoped OSPF Router Information LSA (RFC 7770, instance 1 by default)
//! for the local lisp-agent's functions, through FRR ospfd's OSPF API, and
//! reports every other router's MSFD TLVs to the agent.

pub mod api_client;
pub mod config;
pub mod daemon;
pub mod translate;
