//! FRR ospfd's OSPF API (ospfd/ospf_api.h, ospf_apiserver.c; wire-formats.md
//! §5.2). Client requests go over the synchronous channel (TCP 2607) and are
//! answered by REPLY with the same sequence number; notifications arrive on
//! the channel ospfd dials back to the client's port + 1.
//!
//! ```text
//! header: version(8)=1 | type(8) | body length(16) | seq(32)      (big-endian)
//! ```
//!
//! Bodies are the C structs of ospf_api.h laid out without implicit padding
//! (every struct there is 4-byte aligned by explicit `pad` fields):
//!
//! | type | message | body |
//! |---|---|---|
//! | 1, 2 | (UN)REGISTER_OPAQUETYPE | lsa_type(8) opaque_type(8) pad(16) |
//! | 3, 4 | REGISTER_EVENT, SYNC_LSDB | typemask(16) origin(8) num_areas(8) area(32)* |
//! | 5 | ORIGINATE_REQUEST | ifaddr(32) area_id(32) LSA |
//! | 6 | DELETE_REQUEST | addr(32) lsa_type(8) opaque_type(8) pad(8) flags(8) opaque_id(32) |
//! | 7, 8, 9, 19 | SYNC_REACHABLE/ISM/NSM/ROUTER_ID | no fields; 4 zero bytes sent |
//! | 10 | REPLY | errcode(i8) pad(24) |
//! | 11 | READY_NOTIFY | lsa_type(8) opaque_type(8) pad(16) addr(32) |
//! | 12, 13 | LSA_UPDATE/DELETE_NOTIFY | ifaddr(32) area_id(32) is_self(8) pad(24) LSA |
//! | 14 | NEW_IF | ifaddr(32) area_id(32) |
//! | 15 | DEL_IF | ifaddr(32) |
//! | 16 | ISM_CHANGE | ifaddr(32) area_id(32) status(8) pad(24) |
//! | 17 | NSM_CHANGE | ifaddr(32) nbraddr(32) router_id(32) status(8) pad(24) |
//! | 18 | REACHABLE_CHANGE | nadd(16) nremove(16) router_id(32)* |
//! | 20 | ROUTER_ID_CHANGE | router_id(32) |
//!
//! Version notes (checked against FRR's source):
//! - Types 7-9 and 18-20 and the DELETE_REQUEST flags byte came with the 2022
//!   API rework (LabN; `ospfclient.py` of that era). Older ospfd, like the
//!   original `ospf_api.h`, has `pad[2]` where `flags` now sits and no
//!   `SYNC_*`/`REACHABLE`/`ROUTER_ID` messages: the DELETE_REQUEST layout is
//!   the same 12 bytes either way, an old server just ignores the flags.
//! - The SYNC_* requests have no fields, but we send a 4-byte zero body as
//!   FRR's own `ospfclient.py` does: ospfd's `msg_read` hands the body length
//!   to `stream_new`, which asserts a non-zero size. We accept 0 or 4 bytes.
//! - ospfd reads a message into a fixed buffer of `OSPF_API_MAX_MSG_SIZE`
//!   (struct union + `OSPF_MAX_LSA_SIZE` = 1500), so ORIGINATE_REQUEST refuses
//!   LSAs larger than [`FRR_MAX_LSA_SIZE`], and LSAs whose length is not a
//!   multiple of 4, which receiving routers discard. Decoding accepts both.
//! - The LSA filter's typemask selects type `t` with bit `t - 1` (ospfd's
//!   `Power2[t]`); FRR's `ospfclient.py` builds it with `1 << t`, one bit off,
//!   which only goes unnoticed with the all-types mask 0xFFFF.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::ospf::lsa::{Lsa, MAX_OPAQUE_ID, OpaqueLsa};
use crate::wire::{Reader, bounded_capacity};

pub const API_VERSION: u8 = 1;
pub const API_HEADER_LEN: usize = 8;
/// ospfd's synchronous port; the client listens on its own port + 1.
pub const SYNC_PORT: u16 = 2607;
/// Largest LSA ospfd accepts in ORIGINATE_REQUEST (`OSPF_MAX_LSA_SIZE`).
pub const FRR_MAX_LSA_SIZE: usize = 1500;
/// Sanity limit on a received body: ospfd never sends more than about 1.5 KiB
/// per message; anything far larger means the stream is out of step.
pub const MAX_BODY_LEN: usize = 16 * 1024;
/// DELETE_REQUEST flag: flush with a zero-length body (`OSPF_API_DEL_ZERO_LEN_LSA`).
pub const DELETE_FLAG_ZERO_LEN_LSA: u8 = 0x01;

/// Message type codes.
pub mod msg_type {
    pub const REGISTER_OPAQUETYPE: u8 = 1;
    pub const UNREGISTER_OPAQUETYPE: u8 = 2;
    pub const REGISTER_EVENT: u8 = 3;
    pub const SYNC_LSDB: u8 = 4;
    pub const ORIGINATE_REQUEST: u8 = 5;
    pub const DELETE_REQUEST: u8 = 6;
    pub const SYNC_REACHABLE: u8 = 7;
    pub const SYNC_ISM: u8 = 8;
    pub const SYNC_NSM: u8 = 9;
    pub const REPLY: u8 = 10;
    pub const READY_NOTIFY: u8 = 11;
    pub const LSA_UPDATE_NOTIFY: u8 = 12;
    pub const LSA_DELETE_NOTIFY: u8 = 13;
    pub const NEW_IF: u8 = 14;
    pub const DEL_IF: u8 = 15;
    pub const ISM_CHANGE: u8 = 16;
    pub const NSM_CHANGE: u8 = 17;
    pub const REACHABLE_CHANGE: u8 = 18;
    pub const SYNC_ROUTER_ID: u8 = 19;
    pub const ROUTER_ID_CHANGE: u8 = 20;

    /// True for the types this module decodes into typed bodies.
    pub fn is_known(t: u8) -> bool {
        matches!(t, 1..=20)
    }
}

/// REPLY error codes (`OSPF_API_*`). `Other` keeps codes newer ospfd may add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApiErrorCode {
    Ok,
    NoSuchInterface,
    NoSuchArea,
    NoSuchLsa,
    IllegalLsaType,
    /// The opaque type is owned by someone else, typically ospfd's own
    /// `router-info` (or Segment Routing) for opaque type 4.
    OpaqueTypeInUse,
    OpaqueTypeNotRegistered,
    NotReady,
    NoMemory,
    Error,
    Undef,
    Other(i8),
}

impl ApiErrorCode {
    pub fn code(self) -> i8 {
        match self {
            ApiErrorCode::Ok => 0,
            ApiErrorCode::NoSuchInterface => -1,
            ApiErrorCode::NoSuchArea => -2,
            ApiErrorCode::NoSuchLsa => -3,
            ApiErrorCode::IllegalLsaType => -4,
            ApiErrorCode::OpaqueTypeInUse => -5,
            ApiErrorCode::OpaqueTypeNotRegistered => -6,
            ApiErrorCode::NotReady => -7,
            ApiErrorCode::NoMemory => -8,
            ApiErrorCode::Error => -9,
            ApiErrorCode::Undef => -10,
            ApiErrorCode::Other(c) => c,
        }
    }

    pub fn from_code(c: i8) -> Self {
        match c {
            0 => ApiErrorCode::Ok,
            -1 => ApiErrorCode::NoSuchInterface,
            -2 => ApiErrorCode::NoSuchArea,
            -3 => ApiErrorCode::NoSuchLsa,
            -4 => ApiErrorCode::IllegalLsaType,
            -5 => ApiErrorCode::OpaqueTypeInUse,
            -6 => ApiErrorCode::OpaqueTypeNotRegistered,
            -7 => ApiErrorCode::NotReady,
            -8 => ApiErrorCode::NoMemory,
            -9 => ApiErrorCode::Error,
            -10 => ApiErrorCode::Undef,
            other => ApiErrorCode::Other(other),
        }
    }

    pub fn is_ok(self) -> bool {
        self == ApiErrorCode::Ok
    }

    /// ospfd's constant name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            ApiErrorCode::Ok => "OSPF_API_OK",
            ApiErrorCode::NoSuchInterface => "OSPF_API_NOSUCHINTERFACE",
            ApiErrorCode::NoSuchArea => "OSPF_API_NOSUCHAREA",
            ApiErrorCode::NoSuchLsa => "OSPF_API_NOSUCHLSA",
            ApiErrorCode::IllegalLsaType => "OSPF_API_ILLEGALLSATYPE",
            ApiErrorCode::OpaqueTypeInUse => "OSPF_API_OPAQUETYPEINUSE",
            ApiErrorCode::OpaqueTypeNotRegistered => "OSPF_API_OPAQUETYPENOTREGISTERED",
            ApiErrorCode::NotReady => "OSPF_API_NOTREADY",
            ApiErrorCode::NoMemory => "OSPF_API_NOMEMORY",
            ApiErrorCode::Error => "OSPF_API_ERROR",
            ApiErrorCode::Undef => "OSPF_API_UNDEF",
            ApiErrorCode::Other(_) => "unknown",
        }
    }
}

/// Which LSAs a filter selects by origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FilterOrigin {
    NonSelf,
    SelfOriginated,
    #[default]
    Any,
}

impl FilterOrigin {
    pub fn code(self) -> u8 {
        match self {
            FilterOrigin::NonSelf => 0,
            FilterOrigin::SelfOriginated => 1,
            FilterOrigin::Any => 2,
        }
    }

    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(FilterOrigin::NonSelf),
            1 => Some(FilterOrigin::SelfOriginated),
            2 => Some(FilterOrigin::Any),
            _ => None,
        }
    }
}

/// LSA filter of REGISTER_EVENT and SYNC_LSDB (`struct lsa_filter_type`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsaFilter {
    /// Bit `t - 1` selects LSA type `t` (see [`LsaFilter::mask_for`]).
    pub typemask: u16,
    pub origin: FilterOrigin,
    /// Empty = all areas (AS-scoped LSAs ignore the list).
    pub areas: Vec<Ipv4Addr>,
}

impl LsaFilter {
    /// The typemask selecting `types` (1..=16; others are ignored).
    pub fn mask_for(types: &[u8]) -> u16 {
        types
            .iter()
            .filter(|t| (1..=16).contains(*t))
            .fold(0, |m, t| m | (1 << (t - 1)))
    }

    /// The filter our discovery client uses: opaque area and AS LSAs
    /// (mask 0x0600), any origin, all areas.
    pub fn opaque_area_and_as() -> Self {
        LsaFilter {
            typemask: Self::mask_for(&[10, 11]),
            origin: FilterOrigin::Any,
            areas: Vec::new(),
        }
    }

    fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let n = u8::try_from(self.areas.len()).map_err(|_| EncodeError::TooMany {
            field: "filter areas",
            count: self.areas.len(),
            limit: 255,
        })?;
        buf.extend_from_slice(&self.typemask.to_be_bytes());
        buf.push(self.origin.code());
        buf.push(n);
        for a in &self.areas {
            buf.extend_from_slice(&a.octets());
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<LsaFilter, DecodeError> {
        let typemask = r.u16("filter typemask")?;
        let origin_code = r.u8("filter origin")?;
        let origin = FilterOrigin::from_code(origin_code).ok_or(DecodeError::BadValue {
            field: "filter origin",
            value: origin_code.into(),
            reason: "is not 0 (non-self), 1 (self) or 2 (any)",
        })?;
        let n = usize::from(r.u8("filter num_areas")?);
        let mut areas = Vec::with_capacity(bounded_capacity(n, r.remaining(), 4));
        for _ in 0..n {
            areas.push(ip(r, "filter area")?);
        }
        Ok(LsaFilter {
            typemask,
            origin,
            areas,
        })
    }
}

/// Interface state (ospfd's ISM states, `ISM_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IsmState(pub u8);

impl IsmState {
    pub const DEPEND_UPON: IsmState = IsmState(0);
    pub const DOWN: IsmState = IsmState(1);
    pub const LOOPBACK: IsmState = IsmState(2);
    pub const WAITING: IsmState = IsmState(3);
    pub const POINT_TO_POINT: IsmState = IsmState(4);
    pub const DR_OTHER: IsmState = IsmState(5);
    pub const BACKUP: IsmState = IsmState(6);
    pub const DR: IsmState = IsmState(7);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "DependUpon",
            1 => "Down",
            2 => "Loopback",
            3 => "Waiting",
            4 => "Point-To-Point",
            5 => "DROther",
            6 => "Backup",
            7 => "DR",
            _ => "unknown",
        }
    }
}

/// Neighbour state (ospfd's NSM states, `NSM_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NsmState(pub u8);

impl NsmState {
    pub const DEPEND_UPON: NsmState = NsmState(0);
    pub const DELETED: NsmState = NsmState(1);
    pub const DOWN: NsmState = NsmState(2);
    pub const ATTEMPT: NsmState = NsmState(3);
    pub const INIT: NsmState = NsmState(4);
    pub const TWO_WAY: NsmState = NsmState(5);
    pub const EX_START: NsmState = NsmState(6);
    pub const EXCHANGE: NsmState = NsmState(7);
    pub const LOADING: NsmState = NsmState(8);
    pub const FULL: NsmState = NsmState(9);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "DependUpon",
            1 => "Deleted",
            2 => "Down",
            3 => "Attempt",
            4 => "Init",
            5 => "2-Way",
            6 => "ExStart",
            7 => "Exchange",
            8 => "Loading",
            9 => "Full",
            _ => "unknown",
        }
    }
}

/// Body of LSA_UPDATE_NOTIFY and LSA_DELETE_NOTIFY.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsaChangeNotify {
    /// Interface of a type-9 LSA, else 0.0.0.0.
    pub ifaddr: Ipv4Addr,
    /// Area of the LSA; 0.0.0.0 for AS-scoped LSAs.
    pub area_id: Ipv4Addr,
    /// ospfd originated it (possibly for us).
    pub is_self: bool,
    pub lsa: Lsa,
}

/// Every message body of the OSPF API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiBody {
    RegisterOpaqueType {
        lsa_type: u8,
        opaque_type: u8,
    },
    UnregisterOpaqueType {
        lsa_type: u8,
        opaque_type: u8,
    },
    RegisterEvent(LsaFilter),
    SyncLsdb(LsaFilter),
    OriginateRequest {
        /// Interface address, used for type-9 LSAs only.
        ifaddr: Ipv4Addr,
        /// Area, used for type-10 LSAs only.
        area_id: Ipv4Addr,
        lsa: OpaqueLsa,
    },
    DeleteRequest {
        /// Interface address (type 9) or area (type 10); ignored for type 11.
        addr: Ipv4Addr,
        lsa_type: u8,
        opaque_type: u8,
        /// [`DELETE_FLAG_ZERO_LEN_LSA`]; ignored by servers older than the flag.
        flags: u8,
        /// 24 bits.
        opaque_id: u32,
    },
    SyncReachable,
    SyncIsm,
    SyncNsm,
    SyncRouterId,
    Reply {
        errcode: ApiErrorCode,
    },
    ReadyNotify {
        lsa_type: u8,
        opaque_type: u8,
        /// Interface address (type 9), area (type 10) or 0.0.0.0 (type 11).
        addr: Ipv4Addr,
    },
    LsaUpdateNotify(LsaChangeNotify),
    LsaDeleteNotify(LsaChangeNotify),
    NewIf {
        ifaddr: Ipv4Addr,
        area_id: Ipv4Addr,
    },
    DelIf {
        ifaddr: Ipv4Addr,
    },
    IsmChange {
        ifaddr: Ipv4Addr,
        area_id: Ipv4Addr,
        status: IsmState,
    },
    NsmChange {
        ifaddr: Ipv4Addr,
        nbr_addr: Ipv4Addr,
        router_id: Ipv4Addr,
        status: NsmState,
    },
    ReachableChange {
        added: Vec<Ipv4Addr>,
        removed: Vec<Ipv4Addr>,
    },
    RouterIdChange {
        router_id: Ipv4Addr,
    },
    /// A type this module does not know (a newer ospfd), kept so the stream
    /// stays in step.
    Unknown {
        msg_type: u8,
        body: Vec<u8>,
    },
}

impl ApiBody {
    pub fn msg_type(&self) -> u8 {
        use msg_type::*;
        match self {
            ApiBody::RegisterOpaqueType { .. } => REGISTER_OPAQUETYPE,
            ApiBody::UnregisterOpaqueType { .. } => UNREGISTER_OPAQUETYPE,
            ApiBody::RegisterEvent(_) => REGISTER_EVENT,
            ApiBody::SyncLsdb(_) => SYNC_LSDB,
            ApiBody::OriginateRequest { .. } => ORIGINATE_REQUEST,
            ApiBody::DeleteRequest { .. } => DELETE_REQUEST,
            ApiBody::SyncReachable => SYNC_REACHABLE,
            ApiBody::SyncIsm => SYNC_ISM,
            ApiBody::SyncNsm => SYNC_NSM,
            ApiBody::SyncRouterId => SYNC_ROUTER_ID,
            ApiBody::Reply { .. } => REPLY,
            ApiBody::ReadyNotify { .. } => READY_NOTIFY,
            ApiBody::LsaUpdateNotify(_) => LSA_UPDATE_NOTIFY,
            ApiBody::LsaDeleteNotify(_) => LSA_DELETE_NOTIFY,
            ApiBody::NewIf { .. } => NEW_IF,
            ApiBody::DelIf { .. } => DEL_IF,
            ApiBody::IsmChange { .. } => ISM_CHANGE,
            ApiBody::NsmChange { .. } => NSM_CHANGE,
            ApiBody::ReachableChange { .. } => REACHABLE_CHANGE,
            ApiBody::RouterIdChange { .. } => ROUTER_ID_CHANGE,
            ApiBody::Unknown { msg_type, .. } => *msg_type,
        }
    }

    pub fn name(&self) -> &'static str {
        type_name(self.msg_type())
    }

    fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            ApiBody::RegisterOpaqueType {
                lsa_type,
                opaque_type,
            }
            | ApiBody::UnregisterOpaqueType {
                lsa_type,
                opaque_type,
            } => buf.extend_from_slice(&[*lsa_type, *opaque_type, 0, 0]),
            ApiBody::RegisterEvent(f) | ApiBody::SyncLsdb(f) => f.encode(buf)?,
            ApiBody::OriginateRequest {
                ifaddr,
                area_id,
                lsa,
            } => {
                if lsa.wire_len() > FRR_MAX_LSA_SIZE {
                    return Err(EncodeError::Invalid {
                        field: "originate request lsa",
                        reason: "longer than ospfd's OSPF_MAX_LSA_SIZE (1500 bytes)",
                    });
                }
                // OSPF routers drop LSAs whose length is not a multiple of 4
                // (RI TLVs are padded, so a well-built body always is).
                if !lsa.wire_len().is_multiple_of(4) {
                    return Err(EncodeError::Invalid {
                        field: "originate request lsa",
                        reason: "length is not a multiple of 4",
                    });
                }
                buf.extend_from_slice(&ifaddr.octets());
                buf.extend_from_slice(&area_id.octets());
                lsa.encode(buf)?;
            }
            ApiBody::DeleteRequest {
                addr,
                lsa_type,
                opaque_type,
                flags,
                opaque_id,
            } => {
                if *opaque_id > MAX_OPAQUE_ID {
                    return Err(EncodeError::Invalid {
                        field: "delete request opaque id",
                        reason: "wider than 24 bits",
                    });
                }
                buf.extend_from_slice(&addr.octets());
                buf.extend_from_slice(&[*lsa_type, *opaque_type, 0, *flags]);
                buf.extend_from_slice(&opaque_id.to_be_bytes());
            }
            ApiBody::SyncReachable
            | ApiBody::SyncIsm
            | ApiBody::SyncNsm
            | ApiBody::SyncRouterId => {
                buf.extend_from_slice(&[0; 4]);
            }
            ApiBody::Reply { errcode } => {
                buf.extend_from_slice(&[errcode.code().to_be_bytes()[0], 0, 0, 0]);
            }
            ApiBody::ReadyNotify {
                lsa_type,
                opaque_type,
                addr,
            } => {
                buf.extend_from_slice(&[*lsa_type, *opaque_type, 0, 0]);
                buf.extend_from_slice(&addr.octets());
            }
            ApiBody::LsaUpdateNotify(n) | ApiBody::LsaDeleteNotify(n) => {
                buf.extend_from_slice(&n.ifaddr.octets());
                buf.extend_from_slice(&n.area_id.octets());
                buf.extend_from_slice(&[u8::from(n.is_self), 0, 0, 0]);
                n.lsa.encode(buf)?;
            }
            ApiBody::NewIf { ifaddr, area_id } => {
                buf.extend_from_slice(&ifaddr.octets());
                buf.extend_from_slice(&area_id.octets());
            }
            ApiBody::DelIf { ifaddr } => buf.extend_from_slice(&ifaddr.octets()),
            ApiBody::IsmChange {
                ifaddr,
                area_id,
                status,
            } => {
                buf.extend_from_slice(&ifaddr.octets());
                buf.extend_from_slice(&area_id.octets());
                buf.extend_from_slice(&[status.0, 0, 0, 0]);
            }
            ApiBody::NsmChange {
                ifaddr,
                nbr_addr,
                router_id,
                status,
            } => {
                buf.extend_from_slice(&ifaddr.octets());
                buf.extend_from_slice(&nbr_addr.octets());
                buf.extend_from_slice(&router_id.octets());
                buf.extend_from_slice(&[status.0, 0, 0, 0]);
            }
            ApiBody::ReachableChange { added, removed } => {
                let count = |v: &Vec<Ipv4Addr>, field| {
                    u16::try_from(v.len()).map_err(|_| EncodeError::TooMany {
                        field,
                        count: v.len(),
                        limit: u16::MAX as usize,
                    })
                };
                buf.extend_from_slice(&count(added, "reachable added")?.to_be_bytes());
                buf.extend_from_slice(&count(removed, "reachable removed")?.to_be_bytes());
                for a in added.iter().chain(removed) {
                    buf.extend_from_slice(&a.octets());
                }
            }
            ApiBody::RouterIdChange { router_id } => buf.extend_from_slice(&router_id.octets()),
            ApiBody::Unknown { msg_type, body } => {
                if msg_type::is_known(*msg_type) {
                    return Err(EncodeError::Invalid {
                        field: "unknown api message",
                        reason: "uses the type of a known message",
                    });
                }
                buf.extend_from_slice(body);
            }
        }
        Ok(())
    }

    /// Decodes a body of type `t`; every byte must belong to it.
    pub fn decode(t: u8, body: &[u8]) -> Result<ApiBody, DecodeError> {
        use msg_type::*;
        let mut r = Reader::new(body);
        let out = match t {
            REGISTER_OPAQUETYPE | UNREGISTER_OPAQUETYPE => {
                let [lsa_type, opaque_type, _, _] = r.array::<4>("register opaque type")?;
                if t == REGISTER_OPAQUETYPE {
                    ApiBody::RegisterOpaqueType {
                        lsa_type,
                        opaque_type,
                    }
                } else {
                    ApiBody::UnregisterOpaqueType {
                        lsa_type,
                        opaque_type,
                    }
                }
            }
            REGISTER_EVENT => ApiBody::RegisterEvent(LsaFilter::decode(&mut r)?),
            SYNC_LSDB => ApiBody::SyncLsdb(LsaFilter::decode(&mut r)?),
            ORIGINATE_REQUEST => ApiBody::OriginateRequest {
                ifaddr: ip(&mut r, "originate ifaddr")?,
                area_id: ip(&mut r, "originate area id")?,
                lsa: OpaqueLsa::read(&mut r)?,
            },
            DELETE_REQUEST => {
                let addr = ip(&mut r, "delete addr")?;
                let [lsa_type, opaque_type, _pad, flags] = r.array::<4>("delete lsa type")?;
                let opaque_id = r.u32("delete opaque id")?;
                if opaque_id > MAX_OPAQUE_ID {
                    return Err(DecodeError::BadValue {
                        field: "delete opaque id",
                        value: opaque_id.into(),
                        reason: "is wider than 24 bits",
                    });
                }
                ApiBody::DeleteRequest {
                    addr,
                    lsa_type,
                    opaque_type,
                    flags,
                    opaque_id,
                }
            }
            SYNC_REACHABLE | SYNC_ISM | SYNC_NSM | SYNC_ROUTER_ID => {
                if !matches!(body.len(), 0 | 4) {
                    return Err(DecodeError::BadValue {
                        field: "sync request body length",
                        value: body.len() as u64,
                        reason: "is neither 0 nor 4",
                    });
                }
                r.skip(body.len(), "sync request padding")?;
                match t {
                    SYNC_REACHABLE => ApiBody::SyncReachable,
                    SYNC_ISM => ApiBody::SyncIsm,
                    SYNC_NSM => ApiBody::SyncNsm,
                    _ => ApiBody::SyncRouterId,
                }
            }
            REPLY => {
                let [code, _, _, _] = r.array::<4>("reply errcode")?;
                ApiBody::Reply {
                    errcode: ApiErrorCode::from_code(i8::from_be_bytes([code])),
                }
            }
            READY_NOTIFY => {
                let [lsa_type, opaque_type, _, _] = r.array::<4>("ready lsa type")?;
                ApiBody::ReadyNotify {
                    lsa_type,
                    opaque_type,
                    addr: ip(&mut r, "ready addr")?,
                }
            }
            LSA_UPDATE_NOTIFY | LSA_DELETE_NOTIFY => {
                let n = LsaChangeNotify {
                    ifaddr: ip(&mut r, "notify ifaddr")?,
                    area_id: ip(&mut r, "notify area id")?,
                    is_self: r.array::<4>("notify is_self")?[0] != 0,
                    lsa: Lsa::read(&mut r)?,
                };
                if t == LSA_UPDATE_NOTIFY {
                    ApiBody::LsaUpdateNotify(n)
                } else {
                    ApiBody::LsaDeleteNotify(n)
                }
            }
            NEW_IF => ApiBody::NewIf {
                ifaddr: ip(&mut r, "new-if ifaddr")?,
                area_id: ip(&mut r, "new-if area id")?,
            },
            DEL_IF => ApiBody::DelIf {
                ifaddr: ip(&mut r, "del-if ifaddr")?,
            },
            ISM_CHANGE => ApiBody::IsmChange {
                ifaddr: ip(&mut r, "ism ifaddr")?,
                area_id: ip(&mut r, "ism area id")?,
                status: IsmState(r.array::<4>("ism status")?[0]),
            },
            NSM_CHANGE => ApiBody::NsmChange {
                ifaddr: ip(&mut r, "nsm ifaddr")?,
                nbr_addr: ip(&mut r, "nsm neighbour addr")?,
                router_id: ip(&mut r, "nsm router id")?,
                status: NsmState(r.array::<4>("nsm status")?[0]),
            },
            REACHABLE_CHANGE => {
                let nadd = usize::from(r.u16("reachable nadd")?);
                let nremove = usize::from(r.u16("reachable nremove")?);
                if r.remaining() != 4 * (nadd + nremove) {
                    return Err(DecodeError::Invalid {
                        field: "reachable router ids",
                        reason: "body length does not match nadd + nremove",
                    });
                }
                let mut added = Vec::with_capacity(nadd);
                for _ in 0..nadd {
                    added.push(ip(&mut r, "reachable added")?);
                }
                let mut removed = Vec::with_capacity(nremove);
                for _ in 0..nremove {
                    removed.push(ip(&mut r, "reachable removed")?);
                }
                ApiBody::ReachableChange { added, removed }
            }
            ROUTER_ID_CHANGE => ApiBody::RouterIdChange {
                router_id: ip(&mut r, "router id")?,
            },
            other => {
                r.skip(body.len(), "unknown body")?;
                ApiBody::Unknown {
                    msg_type: other,
                    body: body.to_vec(),
                }
            }
        };
        r.finish()?;
        Ok(out)
    }
}

fn ip(r: &mut Reader<'_>, field: &'static str) -> Result<Ipv4Addr, DecodeError> {
    Ok(Ipv4Addr::from(r.u32(field)?))
}

/// ospfd's name of a message type, for logs.
pub fn type_name(t: u8) -> &'static str {
    use msg_type::*;
    match t {
        REGISTER_OPAQUETYPE => "REGISTER_OPAQUETYPE",
        UNREGISTER_OPAQUETYPE => "UNREGISTER_OPAQUETYPE",
        REGISTER_EVENT => "REGISTER_EVENT",
        SYNC_LSDB => "SYNC_LSDB",
        ORIGINATE_REQUEST => "ORIGINATE_REQUEST",
        DELETE_REQUEST => "DELETE_REQUEST",
        SYNC_REACHABLE => "SYNC_REACHABLE",
        SYNC_ISM => "SYNC_ISM",
        SYNC_NSM => "SYNC_NSM",
        REPLY => "REPLY",
        READY_NOTIFY => "READY_NOTIFY",
        LSA_UPDATE_NOTIFY => "LSA_UPDATE_NOTIFY",
        LSA_DELETE_NOTIFY => "LSA_DELETE_NOTIFY",
        NEW_IF => "NEW_IF",
        DEL_IF => "DEL_IF",
        ISM_CHANGE => "ISM_CHANGE",
        NSM_CHANGE => "NSM_CHANGE",
        REACHABLE_CHANGE => "REACHABLE_CHANGE",
        SYNC_ROUTER_ID => "SYNC_ROUTER_ID",
        ROUTER_ID_CHANGE => "ROUTER_ID_CHANGE",
        _ => "UNKNOWN",
    }
}

/// The 8-byte message header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiHeader {
    pub version: u8,
    pub msg_type: u8,
    pub body_len: u16,
    pub seq: u32,
}

impl ApiHeader {
    /// Bytes the whole message spans.
    pub fn frame_len(&self) -> usize {
        API_HEADER_LEN + usize::from(self.body_len)
    }
}

/// Reads the header at the front of `buf` without consuming anything, so a
/// caller can skip a message it failed to decode. `Ok(None)`: fewer than 8 bytes.
pub fn peek_header(buf: &[u8]) -> Result<Option<ApiHeader>, DecodeError> {
    if buf.len() < API_HEADER_LEN {
        return Ok(None);
    }
    let mut r = Reader::new(&buf[..API_HEADER_LEN]);
    let h = ApiHeader {
        version: r.u8("api version")?,
        msg_type: r.u8("api message type")?,
        body_len: r.u16("api body length")?,
        seq: r.u32("api sequence number")?,
    };
    if h.version != API_VERSION {
        return Err(DecodeError::BadValue {
            field: "api version",
            value: h.version.into(),
            reason: "is not 1",
        });
    }
    Ok(Some(h))
}

/// One OSPF API message: header sequence number plus typed body. Requests use
/// 1..=2^31-1, REPLY echoes the request's, notifications use 0 (or the
/// triggering SYNC request's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMessage {
    pub seq: u32,
    pub body: ApiBody,
}

impl ApiMessage {
    pub fn new(seq: u32, body: ApiBody) -> Self {
        ApiMessage { seq, body }
    }

    /// Appends header and body.
    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = buf.len();
        buf.extend_from_slice(&[API_VERSION, self.body.msg_type(), 0, 0]);
        buf.extend_from_slice(&self.seq.to_be_bytes());
        if let Err(e) = self.body.encode(buf) {
            buf.truncate(start);
            return Err(e);
        }
        let len = buf.len() - start - API_HEADER_LEN;
        let Ok(len16) = u16::try_from(len) else {
            buf.truncate(start);
            return Err(EncodeError::Invalid {
                field: "api body length",
                reason: "body longer than 65535 bytes",
            });
        };
        buf[start + 2..start + 4].copy_from_slice(&len16.to_be_bytes());
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(64);
        self.encode(&mut v)?;
        Ok(v)
    }

    /// Decodes exactly one message; every byte of `buf` must belong to it.
    pub fn decode(buf: &[u8]) -> Result<ApiMessage, DecodeError> {
        let h = peek_header(buf)?.ok_or(DecodeError::Truncated {
            field: "api header",
            needed: API_HEADER_LEN,
            available: buf.len(),
        })?;
        let body = &buf[API_HEADER_LEN..];
        if body.len() < usize::from(h.body_len) {
            return Err(DecodeError::Truncated {
                field: "api body",
                needed: usize::from(h.body_len),
                available: body.len(),
            });
        }
        if body.len() > usize::from(h.body_len) {
            return Err(DecodeError::TrailingBytes(
                body.len() - usize::from(h.body_len),
            ));
        }
        Ok(ApiMessage {
            seq: h.seq,
            body: ApiBody::decode(h.msg_type, body)?,
        })
    }
}

/// Splits the next message off a TCP byte stream: `Ok(Some((msg, used)))`,
/// `Ok(None)` when more bytes are needed. A body longer than [`MAX_BODY_LEN`]
/// or a wrong version means the stream is out of step: an error.
pub fn next_message(buf: &[u8]) -> Result<Option<(ApiMessage, usize)>, DecodeError> {
    next_message_with_limit(buf, MAX_BODY_LEN)
}

/// [`next_message`] with an explicit body-length limit.
pub fn next_message_with_limit(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(ApiMessage, usize)>, DecodeError> {
    let Some(h) = peek_header(buf)? else {
        return Ok(None);
    };
    if usize::from(h.body_len) > max_body {
        return Err(DecodeError::TooMany {
            field: "api body bytes",
            count: h.body_len.into(),
            limit: max_body,
        });
    }
    let total = h.frame_len();
    if buf.len() < total {
        return Ok(None);
    }
    let body = ApiBody::decode(h.msg_type, &buf[API_HEADER_LEN..total])?;
    Ok(Some((ApiMessage { seq: h.seq, body }, total)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ospf::lsa::{LSA_TYPE_OPAQUE_AREA, LsaHeader, OPAQUE_TYPE_RI};

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn roundtrip(m: &ApiMessage, want: &[u8]) {
        let v = m.to_bytes().unwrap();
        assert_eq!(v, want, "{}", m.body.name());
        assert_eq!(&ApiMessage::decode(&v).unwrap(), m);
        let (d, used) = next_message(&v).unwrap().unwrap();
        assert_eq!((&d, used), (m, v.len()));
    }

    #[test]
    fn register_opaque_type_known_answer() {
        // REGISTER(10, 4) seq 1, as in the lab (lab-facts.md).
        roundtrip(
            &ApiMessage::new(
                1,
                ApiBody::RegisterOpaqueType {
                    lsa_type: 10,
                    opaque_type: 4,
                },
            ),
            &[1, 1, 0, 4, 0, 0, 0, 1, 10, 4, 0, 0],
        );
        roundtrip(
            &ApiMessage::new(
                2,
                ApiBody::UnregisterOpaqueType {
                    lsa_type: 9,
                    opaque_type: 250,
                },
            ),
            &[1, 2, 0, 4, 0, 0, 0, 2, 9, 250, 0, 0],
        );
    }

    #[test]
    fn filters_known_answer() {
        let f = LsaFilter::opaque_area_and_as();
        assert_eq!(f.typemask, 0x0600);
        roundtrip(
            &ApiMessage::new(3, ApiBody::RegisterEvent(f.clone())),
            &[1, 3, 0, 4, 0, 0, 0, 3, 0x06, 0x00, 2, 0],
        );
        let f2 = LsaFilter {
            typemask: LsaFilter::mask_for(&[1, 10, 0, 17]),
            origin: FilterOrigin::NonSelf,
            areas: vec![a("0.0.0.0"), a("0.0.0.1")],
        };
        assert_eq!(f2.typemask, 0x0201);
        roundtrip(
            &ApiMessage::new(4, ApiBody::SyncLsdb(f2)),
            &[
                1, 4, 0, 12, 0, 0, 0, 4, 0x02, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
        );
    }

    fn ri_lsa() -> OpaqueLsa {
        OpaqueLsa::new(
            LSA_TYPE_OPAQUE_AREA,
            OPAQUE_TYPE_RI,
            1,
            Ipv4Addr::UNSPECIFIED,
            vec![0x80, 0x00, 0x00, 0x04, 1, 2, 3, 4],
        )
    }

    #[test]
    fn originate_and_delete_known_answer() {
        let m = ApiMessage::new(
            5,
            ApiBody::OriginateRequest {
                ifaddr: a("0.0.0.0"),
                area_id: a("0.0.0.0"),
                lsa: ri_lsa(),
            },
        );
        #[rustfmt::skip]
        let want = [
            1, 5, 0, 36, 0, 0, 0, 5,
            0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 10, 4, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28,
            0x80, 0, 0, 4, 1, 2, 3, 4,
        ];
        roundtrip(&m, &want);
        roundtrip(
            &ApiMessage::new(
                6,
                ApiBody::DeleteRequest {
                    addr: a("0.0.0.1"),
                    lsa_type: 10,
                    opaque_type: 4,
                    flags: DELETE_FLAG_ZERO_LEN_LSA,
                    opaque_id: 1,
                },
            ),
            &[1, 6, 0, 12, 0, 0, 0, 6, 0, 0, 0, 1, 10, 4, 0, 1, 0, 0, 0, 1],
        );
    }

    #[test]
    fn sync_requests_carry_four_zero_bytes() {
        for (body, t) in [
            (ApiBody::SyncReachable, 7),
            (ApiBody::SyncIsm, 8),
            (ApiBody::SyncNsm, 9),
            (ApiBody::SyncRouterId, 19),
        ] {
            roundtrip(
                &ApiMessage::new(9, body.clone()),
                &[1, t, 0, 4, 0, 0, 0, 9, 0, 0, 0, 0],
            );
            // An empty body is accepted too.
            assert_eq!(
                ApiMessage::decode(&[1, t, 0, 0, 0, 0, 0, 9]).unwrap().body,
                body
            );
            assert!(ApiMessage::decode(&[1, t, 0, 2, 0, 0, 0, 9, 0, 0]).is_err());
        }
    }

    #[test]
    fn reply_codes() {
        roundtrip(
            &ApiMessage::new(
                1,
                ApiBody::Reply {
                    errcode: ApiErrorCode::OpaqueTypeInUse,
                },
            ),
            &[1, 10, 0, 4, 0, 0, 0, 1, 0xFB, 0, 0, 0],
        );
        roundtrip(
            &ApiMessage::new(
                7,
                ApiBody::Reply {
                    errcode: ApiErrorCode::Ok,
                },
            ),
            &[1, 10, 0, 4, 0, 0, 0, 7, 0, 0, 0, 0],
        );
        for c in -12i8..=2 {
            assert_eq!(ApiErrorCode::from_code(c).code(), c);
        }
        assert_eq!(
            ApiErrorCode::from_code(-5).name(),
            "OSPF_API_OPAQUETYPEINUSE"
        );
        assert_eq!(ApiErrorCode::from_code(-11), ApiErrorCode::Other(-11));
    }

    #[test]
    fn notifications_known_answer() {
        roundtrip(
            &ApiMessage::new(
                0,
                ApiBody::ReadyNotify {
                    lsa_type: 10,
                    opaque_type: 4,
                    addr: a("0.0.0.0"),
                },
            ),
            &[1, 11, 0, 8, 0, 0, 0, 0, 10, 4, 0, 0, 0, 0, 0, 0],
        );
        let mut lsa: Lsa = ri_lsa().into();
        lsa.header.adv_router = a("192.0.2.2");
        let m = ApiMessage::new(
            0,
            ApiBody::LsaUpdateNotify(LsaChangeNotify {
                ifaddr: a("0.0.0.0"),
                area_id: a("0.0.0.0"),
                is_self: false,
                lsa: lsa.clone(),
            }),
        );
        let v = m.to_bytes().unwrap();
        assert_eq!(
            &v[..20],
            &[1, 12, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(&v[20..], lsa.to_bytes().unwrap().as_slice());
        roundtrip(&m, &v);
        let d = ApiMessage::new(
            0,
            ApiBody::LsaDeleteNotify(LsaChangeNotify {
                ifaddr: a("192.0.2.1"),
                area_id: a("0.0.0.1"),
                is_self: true,
                lsa,
            }),
        );
        let v = d.to_bytes().unwrap();
        assert_eq!(
            &v[..20],
            &[
                1, 13, 0, 40, 0, 0, 0, 0, 192, 0, 2, 1, 0, 0, 0, 1, 1, 0, 0, 0
            ]
        );
        roundtrip(&d, &v);
        roundtrip(
            &ApiMessage::new(
                0,
                ApiBody::NewIf {
                    ifaddr: a("192.0.2.1"),
                    area_id: a("0.0.0.0"),
                },
            ),
            &[1, 14, 0, 8, 0, 0, 0, 0, 192, 0, 2, 1, 0, 0, 0, 0],
        );
        roundtrip(
            &ApiMessage::new(
                0,
                ApiBody::DelIf {
                    ifaddr: a("192.0.2.1"),
                },
            ),
            &[1, 15, 0, 4, 0, 0, 0, 0, 192, 0, 2, 1],
        );
        roundtrip(
            &ApiMessage::new(
                0,
                ApiBody::IsmChange {
                    ifaddr: a("192.0.2.1"),
                    area_id: a("0.0.0.0"),
                    status: IsmState::DR,
                },
            ),
            &[
                1, 16, 0, 12, 0, 0, 0, 0, 192, 0, 2, 1, 0, 0, 0, 0, 7, 0, 0, 0,
            ],
        );
        roundtrip(
            &ApiMessage::new(
                0,
                ApiBody::NsmChange {
                    ifaddr: a("192.0.2.1"),
                    nbr_addr: a("192.0.2.2"),
                    router_id: a("198.51.100.2"),
                    status: NsmState::FULL,
                },
            ),
            &[
                1, 17, 0, 16, 0, 0, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 198, 51, 100, 2, 9, 0, 0, 0,
            ],
        );
        roundtrip(
            &ApiMessage::new(
                3,
                ApiBody::ReachableChange {
                    added: vec![a("198.51.100.1"), a("198.51.100.2")],
                    removed: vec![a("198.51.100.3")],
                },
            ),
            &[
                1, 18, 0, 16, 0, 0, 0, 3, 0, 2, 0, 1, 198, 51, 100, 1, 198, 51, 100, 2, 198, 51,
                100, 3,
            ],
        );
        roundtrip(
            &ApiMessage::new(
                0,
                ApiBody::RouterIdChange {
                    router_id: a("198.51.100.1"),
                },
            ),
            &[1, 20, 0, 4, 0, 0, 0, 0, 198, 51, 100, 1],
        );
        assert_eq!(NsmState::FULL.name(), "Full");
        assert_eq!(IsmState::DR.name(), "DR");
    }

    #[test]
    fn unknown_types_are_kept() {
        let m = ApiMessage::new(
            0,
            ApiBody::Unknown {
                msg_type: 42,
                body: vec![1, 2, 3],
            },
        );
        roundtrip(&m, &[1, 42, 0, 3, 0, 0, 0, 0, 1, 2, 3]);
        let bad = ApiMessage::new(
            0,
            ApiBody::Unknown {
                msg_type: 10,
                body: vec![],
            },
        );
        assert!(bad.to_bytes().is_err());
    }

    #[test]
    fn stream_splitting() {
        let mut stream = Vec::new();
        let m1 = ApiMessage::new(
            1,
            ApiBody::Reply {
                errcode: ApiErrorCode::Ok,
            },
        );
        let m2 = ApiMessage::new(
            0,
            ApiBody::DelIf {
                ifaddr: a("192.0.2.1"),
            },
        );
        m1.encode(&mut stream).unwrap();
        m2.encode(&mut stream).unwrap();
        for cut in 0..12 {
            assert_eq!(next_message(&stream[..cut]).unwrap(), None, "cut {cut}");
        }
        let (d1, n1) = next_message(&stream).unwrap().unwrap();
        assert_eq!((d1, n1), (m1, 12));
        let (d2, n2) = next_message(&stream[n1..]).unwrap().unwrap();
        assert_eq!((d2, n2), (m2, 12));
        assert_eq!(next_message(&stream[n1 + n2..]).unwrap(), None);
    }

    #[test]
    fn stream_errors() {
        // Wrong version.
        assert!(matches!(
            next_message(&[2, 10, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(DecodeError::BadValue {
                field: "api version",
                ..
            })
        ));
        // Body over the sanity limit, refused before it arrives.
        assert!(matches!(
            next_message(&[1, 12, 0xFF, 0xFF, 0, 0, 0, 0]),
            Err(DecodeError::TooMany { .. })
        ));
        assert!(next_message_with_limit(&[1, 12, 0, 40, 0, 0, 0, 0], 16).is_err());
        // Fixed-size body with a wrong length.
        assert!(matches!(
            next_message(&[1, 10, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0]),
            Err(DecodeError::TrailingBytes(1))
        ));
        assert!(matches!(
            next_message(&[1, 15, 0, 3, 0, 0, 0, 1, 0, 0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
        // The header is still readable, so a caller can skip the message.
        let h = peek_header(&[1, 15, 0, 3, 0, 0, 0, 1, 0, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!(h.frame_len(), 11);
    }

    #[test]
    fn malformed_bodies() {
        // REACHABLE_CHANGE counts that do not match the body.
        assert!(matches!(
            ApiBody::decode(msg_type::REACHABLE_CHANGE, &[0, 2, 0, 0, 1, 2, 3, 4]),
            Err(DecodeError::Invalid {
                field: "reachable router ids",
                ..
            })
        ));
        // Filter announcing more areas than present.
        assert!(matches!(
            ApiBody::decode(msg_type::REGISTER_EVENT, &[0, 0, 2, 3, 0, 0, 0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
        // Bad filter origin.
        assert!(matches!(
            ApiBody::decode(msg_type::REGISTER_EVENT, &[0, 0, 3, 0]),
            Err(DecodeError::BadValue {
                field: "filter origin",
                ..
            })
        ));
        // LSA length beyond the body, and LSA shorter than the body.
        let mut body = vec![0; 12];
        let mut lsa = Lsa::new(
            LsaHeader::opaque(10, 4, 1, Ipv4Addr::UNSPECIFIED),
            vec![0; 8],
        )
        .to_bytes()
        .unwrap();
        lsa[19] = 32;
        body.extend_from_slice(&lsa);
        assert!(matches!(
            ApiBody::decode(msg_type::LSA_UPDATE_NOTIFY, &body),
            Err(DecodeError::Truncated { .. })
        ));
        body.extend_from_slice(&[0; 4]); // completes the 32-byte LSA
        body.extend_from_slice(&[0; 4]); // one word too many
        assert!(matches!(
            ApiBody::decode(msg_type::LSA_UPDATE_NOTIFY, &body),
            Err(DecodeError::TrailingBytes(4))
        ));
        // ORIGINATE_REQUEST of a non-opaque LSA.
        let mut body = vec![0; 8];
        body.extend_from_slice(
            &Lsa::new(LsaHeader::opaque(1, 0, 0, Ipv4Addr::UNSPECIFIED), vec![])
                .to_bytes()
                .unwrap(),
        );
        assert!(ApiBody::decode(msg_type::ORIGINATE_REQUEST, &body).is_err());
        // DELETE_REQUEST with an opaque id over 24 bits.
        assert!(
            ApiBody::decode(
                msg_type::DELETE_REQUEST,
                &[0, 0, 0, 0, 10, 4, 0, 0, 1, 0, 0, 0]
            )
            .is_err()
        );
    }

    #[test]
    fn encoder_limits() {
        let big = OpaqueLsa::new(10, 4, 1, Ipv4Addr::UNSPECIFIED, vec![0; FRR_MAX_LSA_SIZE]);
        let m = ApiMessage::new(
            1,
            ApiBody::OriginateRequest {
                ifaddr: a("0.0.0.0"),
                area_id: a("0.0.0.0"),
                lsa: big,
            },
        );
        let mut buf = vec![7];
        assert!(m.encode(&mut buf).is_err());
        assert_eq!(buf, [7], "a failed encode leaves the buffer as it was");
        let odd = OpaqueLsa::new(10, 4, 1, Ipv4Addr::UNSPECIFIED, vec![0; 6]);
        let m = ApiMessage::new(
            1,
            ApiBody::OriginateRequest {
                ifaddr: a("0.0.0.0"),
                area_id: a("0.0.0.0"),
                lsa: odd,
            },
        );
        assert!(m.to_bytes().is_err());
        let m = ApiMessage::new(
            1,
            ApiBody::DeleteRequest {
                addr: a("0.0.0.0"),
                lsa_type: 10,
                opaque_type: 4,
                flags: 0,
                opaque_id: 1 << 24,
            },
        );
        assert!(m.to_bytes().is_err());
        let f = LsaFilter {
            typemask: 0,
            origin: FilterOrigin::Any,
            areas: vec![a("0.0.0.0"); 256],
        };
        assert!(
            ApiMessage::new(1, ApiBody::RegisterEvent(f))
                .to_bytes()
                .is_err()
        );
    }
}
