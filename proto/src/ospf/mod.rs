//! OSPFv2 pieces the MSFD discovery needs: LSAs and their checksum, the
//! Router Information TLV stream (RFC 7770), the MSFD TLV
//! (draft-boucadair-lisp-function-discovery-03) and FRR ospfd's OSPF API,
//! through which we originate and receive the RI LSA.

pub mod api;
pub mod lsa;
pub mod msfd;
pub mod ri;

pub use api::{
    ApiBody, ApiErrorCode, ApiHeader, ApiMessage, FilterOrigin, IsmState, LsaChangeNotify,
    LsaFilter, NsmState, next_message, peek_header,
};
pub use lsa::{Lsa, LsaHeader, OpaqueLsa, lsa_checksum, set_checksum, verify_checksum};
pub use msfd::{DEFAULT_MSFD_TLV_TYPE, MsStatus, MsfStatus, MsfType, Msfd, find_msfd};
pub use ri::{Tlv, decode_tlvs, encode_tlvs};
