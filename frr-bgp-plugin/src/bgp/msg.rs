//! BGP-4 messages (RFC 4271) other than the UPDATE body: the common header,
//! OPEN with capabilities (RFC 5492: multiprotocol RFC 4760, route refresh
//! RFC 2918, 4-octet AS RFC 6793), NOTIFICATION, KEEPALIVE, ROUTE-REFRESH.
//!
//! Every decoder returns a typed [`BgpError`]; each error knows the
//! NOTIFICATION (code, subcode, data) that RFC 4271 §6 prescribes for it.

use std::fmt;
use std::net::Ipv4Addr;

use super::prefix::Family;

pub const HEADER_LEN: usize = 19;
/// RFC 4271 maximum; we do not negotiate extended messages (RFC 8654).
pub const MAX_MESSAGE_LEN: usize = 4096;
pub const BGP_VERSION: u8 = 4;
/// RFC 6793: the 2-octet "My Autonomous System" of a 4-octet speaker.
pub const AS_TRANS: u16 = 23456;

pub const MSG_OPEN: u8 = 1;
pub const MSG_UPDATE: u8 = 2;
pub const MSG_NOTIFICATION: u8 = 3;
pub const MSG_KEEPALIVE: u8 = 4;
pub const MSG_ROUTE_REFRESH: u8 = 5;

/// Capability codes (IANA).
pub const CAP_MULTIPROTOCOL: u8 = 1;
pub const CAP_ROUTE_REFRESH: u8 = 2;
pub const CAP_FOUR_OCTET_AS: u8 = 65;
/// OPEN optional parameter type carrying capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

// NOTIFICATION error codes and subcodes (RFC 4271 §4.5, RFC 4486, RFC 7313).
pub const ERR_HEADER: u8 = 1;
pub const ERR_OPEN: u8 = 2;
pub const ERR_UPDATE: u8 = 3;
pub const ERR_HOLD_TIMER: u8 = 4;
pub const ERR_FSM: u8 = 5;
pub const ERR_CEASE: u8 = 6;
pub const ERR_ROUTE_REFRESH: u8 = 7;

pub const HDR_NOT_SYNC: u8 = 1;
pub const HDR_BAD_LENGTH: u8 = 2;
pub const HDR_BAD_TYPE: u8 = 3;

pub const OPEN_UNSUPPORTED_VERSION: u8 = 1;
pub const OPEN_BAD_PEER_AS: u8 = 2;
pub const OPEN_BAD_BGP_ID: u8 = 3;
pub const OPEN_UNSUPPORTED_PARAM: u8 = 4;
pub const OPEN_BAD_HOLD_TIME: u8 = 6;
pub const OPEN_UNSUPPORTED_CAPABILITY: u8 = 7;

pub const UPD_MALFORMED_ATTR_LIST: u8 = 1;
pub const UPD_UNRECOGNIZED_WELL_KNOWN: u8 = 2;
pub const UPD_MISSING_WELL_KNOWN: u8 = 3;
pub const UPD_ATTR_FLAGS: u8 = 4;
pub const UPD_ATTR_LENGTH: u8 = 5;
pub const UPD_INVALID_ORIGIN: u8 = 6;
pub const UPD_INVALID_NEXT_HOP: u8 = 8;
pub const UPD_OPTIONAL_ATTR: u8 = 9;
pub const UPD_INVALID_NETWORK: u8 = 10;
pub const UPD_MALFORMED_AS_PATH: u8 = 11;

pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
pub const CEASE_ADMIN_RESET: u8 = 4;
pub const CEASE_COLLISION: u8 = 7;

pub const RR_INVALID_LENGTH: u8 = 1;

/// A decoding or protocol error, each mapped to the NOTIFICATION it calls for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BgpError {
    #[error("message header: marker is not all ones")]
    NotSynchronized,
    #[error("message header: length {len} is invalid for type {typ}")]
    BadLength { len: u16, typ: u8 },
    #[error("message header: unknown message type {0}")]
    BadType(u8),
    #[error("OPEN: unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("OPEN: peer AS {got} is not the configured {want}")]
    BadPeerAs { got: u32, want: u32 },
    #[error("OPEN: unacceptable BGP identifier {0}")]
    BadBgpId(Ipv4Addr),
    #[error("OPEN: unacceptable hold time {0} s (must be 0 or at least 3)")]
    BadHoldTime(u16),
    #[error("OPEN: unsupported optional parameter {0}")]
    UnsupportedParam(u8),
    #[error("OPEN: the peer lacks a required capability: {0}")]
    MissingCapability(&'static str),
    #[error("OPEN: malformed: {0}")]
    MalformedOpen(String),
    #[error("UPDATE: {reason}")]
    Update {
        subcode: u8,
        reason: String,
        data: Vec<u8>,
    },
    #[error("ROUTE-REFRESH: invalid length {0}")]
    RouteRefreshLength(u16),
    #[error("NOTIFICATION: truncated ({0} octets)")]
    NotificationTruncated(usize),
}

impl BgpError {
    pub fn update(subcode: u8, reason: impl Into<String>) -> BgpError {
        BgpError::Update {
            subcode,
            reason: reason.into(),
            data: Vec::new(),
        }
    }

    /// The NOTIFICATION that reports this error to the peer.
    pub fn notification(&self) -> Notification {
        let (code, subcode, data) = match self {
            BgpError::NotSynchronized => (ERR_HEADER, HDR_NOT_SYNC, vec![]),
            BgpError::BadLength { len, .. } => {
                (ERR_HEADER, HDR_BAD_LENGTH, len.to_be_bytes().to_vec())
            }
            BgpError::BadType(t) => (ERR_HEADER, HDR_BAD_TYPE, vec![*t]),
            BgpError::UnsupportedVersion(_) => (
                ERR_OPEN,
                OPEN_UNSUPPORTED_VERSION,
                u16::from(BGP_VERSION).to_be_bytes().to_vec(),
            ),
            BgpError::BadPeerAs { .. } => (ERR_OPEN, OPEN_BAD_PEER_AS, vec![]),
            BgpError::BadBgpId(_) => (ERR_OPEN, OPEN_BAD_BGP_ID, vec![]),
            BgpError::BadHoldTime(_) => (ERR_OPEN, OPEN_BAD_HOLD_TIME, vec![]),
            BgpError::UnsupportedParam(_) => (ERR_OPEN, OPEN_UNSUPPORTED_PARAM, vec![]),
            BgpError::MissingCapability(_) => (ERR_OPEN, OPEN_UNSUPPORTED_CAPABILITY, vec![]),
            BgpError::MalformedOpen(_) => (ERR_OPEN, 0, vec![]),
            BgpError::Update { subcode, data, .. } => (ERR_UPDATE, *subcode, data.clone()),
            BgpError::RouteRefreshLength(len) => (
                ERR_ROUTE_REFRESH,
                RR_INVALID_LENGTH,
                len.to_be_bytes().to_vec(),
            ),
            BgpError::NotificationTruncated(_) => (ERR_HEADER, HDR_BAD_LENGTH, vec![]),
        };
        Notification {
            code,
            subcode,
            data,
        }
    }
}

/// One capability of an OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    RouteRefresh,
    FourOctetAs(u32),
    /// Anything else (graceful restart, add-path, FQDN, ...), kept raw.
    Other {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&[CAP_MULTIPROTOCOL, 4]);
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
            }
            Capability::RouteRefresh => out.extend_from_slice(&[CAP_ROUTE_REFRESH, 0]),
            Capability::FourOctetAs(asn) => {
                out.extend_from_slice(&[CAP_FOUR_OCTET_AS, 4]);
                out.extend_from_slice(&asn.to_be_bytes());
            }
            Capability::Other { code, value } => {
                out.push(*code);
                out.push(value.len().min(255) as u8);
                out.extend_from_slice(&value[..value.len().min(255)]);
            }
        }
    }

    fn decode(code: u8, value: &[u8]) -> Result<Capability, BgpError> {
        let bad = |what: &str| {
            BgpError::MalformedOpen(format!(
                "capability {code}: {what} (length {})",
                value.len()
            ))
        };
        Ok(match code {
            CAP_MULTIPROTOCOL => {
                let v: [u8; 4] = value
                    .try_into()
                    .map_err(|_| bad("multiprotocol wants 4 octets"))?;
                Capability::Multiprotocol {
                    afi: u16::from_be_bytes([v[0], v[1]]),
                    safi: v[3],
                }
            }
            CAP_ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            CAP_ROUTE_REFRESH => return Err(bad("route refresh has no value")),
            CAP_FOUR_OCTET_AS => {
                let v: [u8; 4] = value
                    .try_into()
                    .map_err(|_| bad("4-octet AS wants 4 octets"))?;
                Capability::FourOctetAs(u32::from_be_bytes(v))
            }
            _ => Capability::Other {
                code,
                value: value.to_vec(),
            },
        })
    }
}

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet field; [`AS_TRANS`] when the real AS does not fit.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// Our OPEN: 4-octet AS, route refresh and one multiprotocol capability
    /// per family.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, families: &[Family]) -> Open {
        let mut capabilities: Vec<Capability> = families
            .iter()
            .map(|f| Capability::Multiprotocol {
                afi: f.afi(),
                safi: f.safi(),
            })
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(asn));
        Open {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The speaker's AS: the 4-octet capability if present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
    }

    pub fn route_refresh(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }

    /// Families announced with the multiprotocol capability. RFC 4760 §8: a
    /// speaker announcing none speaks IPv4 unicast only.
    pub fn families(&self) -> Vec<Family> {
        let mut any_mp = false;
        let mut out = Vec::new();
        for c in &self.capabilities {
            if let Capability::Multiprotocol { afi, safi } = c {
                any_mp = true;
                if let Some(f) = Family::from_afi_safi(*afi, *safi)
                    && !out.contains(&f)
                {
                    out.push(f);
                }
            }
        }
        if !any_mp {
            out.push(Family::Ipv4Unicast);
        }
        out
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut caps = Vec::new();
        for c in &self.capabilities {
            c.encode(&mut caps);
        }
        if caps.is_empty() {
            out.push(0);
            return;
        }
        // One capabilities parameter per 255 octets.
        let mut params = Vec::new();
        let mut chunk = Vec::new();
        let mut rest = caps.as_slice();
        while !rest.is_empty() {
            let len = 2 + usize::from(rest.get(1).copied().unwrap_or(0));
            let (one, tail) = rest.split_at(len.min(rest.len()));
            if chunk.len() + one.len() > 255 {
                params.push(PARAM_CAPABILITIES);
                params.push(chunk.len() as u8);
                params.append(&mut chunk);
            }
            chunk.extend_from_slice(one);
            rest = tail;
        }
        params.push(PARAM_CAPABILITIES);
        params.push(chunk.len() as u8);
        params.append(&mut chunk);
        out.push(params.len().min(255) as u8);
        out.extend_from_slice(&params[..params.len().min(255)]);
    }

    fn decode_body(body: &[u8]) -> Result<Open, BgpError> {
        if body.len() < 10 {
            return Err(BgpError::MalformedOpen(format!(
                "{} octets, at least 10 needed",
                body.len()
            )));
        }
        let version = body[0];
        let my_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        let bgp_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        let plen = usize::from(body[9]);
        let params = body.get(10..).filter(|p| p.len() == plen).ok_or_else(|| {
            BgpError::MalformedOpen(format!(
                "optional parameters length {plen} does not match the {} octets present",
                body.len() - 10
            ))
        })?;
        if version != BGP_VERSION {
            return Err(BgpError::UnsupportedVersion(version));
        }
        let mut capabilities = Vec::new();
        let mut p = params;
        while !p.is_empty() {
            let (typ, len) = match p {
                [t, l, ..] => (*t, usize::from(*l)),
                _ => {
                    return Err(BgpError::MalformedOpen(
                        "optional parameter truncated".into(),
                    ));
                }
            };
            let value = p.get(2..2 + len).ok_or_else(|| {
                BgpError::MalformedOpen(format!("optional parameter {typ} overruns the OPEN"))
            })?;
            if typ != PARAM_CAPABILITIES {
                return Err(BgpError::UnsupportedParam(typ));
            }
            let mut c = value;
            while !c.is_empty() {
                let (code, clen) = match c {
                    [code, l, ..] => (*code, usize::from(*l)),
                    _ => return Err(BgpError::MalformedOpen("capability truncated".into())),
                };
                let cv = c.get(2..2 + clen).ok_or_else(|| {
                    BgpError::MalformedOpen(format!("capability {code} overruns its parameter"))
                })?;
                capabilities.push(Capability::decode(code, cv)?);
                c = &c[2 + clen..];
            }
            p = &p[2 + len..];
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }
}

/// A NOTIFICATION message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Notification {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    pub fn cease(subcode: u8) -> Notification {
        Notification::new(ERR_CEASE, subcode)
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match self.code {
            ERR_HEADER => "Message Header Error",
            ERR_OPEN => "OPEN Message Error",
            ERR_UPDATE => "UPDATE Message Error",
            ERR_HOLD_TIMER => "Hold Timer Expired",
            ERR_FSM => "Finite State Machine Error",
            ERR_CEASE => "Cease",
            ERR_ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            _ => "unknown error code",
        };
        write!(f, "{code} ({}/{})", self.code, self.subcode)?;
        if self.code == ERR_CEASE
            && (self.subcode == CEASE_ADMIN_SHUTDOWN || self.subcode == CEASE_ADMIN_RESET)
        {
            // RFC 9003 shutdown communication: length octet, then UTF-8.
            if let Some((&n, rest)) = self.data.split_first()
                && let Some(text) = rest.get(..usize::from(n))
                && let Ok(s) = std::str::from_utf8(text)
                && !s.is_empty()
            {
                write!(f, ": \"{s}\"")?;
            }
        }
        Ok(())
    }
}

/// A decoded message. UPDATE bodies stay raw: decoding them needs the
/// negotiated session parameters (see [`super::update`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Vec<u8>),
    Notification(Notification),
    Keepalive,
    RouteRefresh { afi: u16, safi: u8 },
}

impl Message {
    pub fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => MSG_OPEN,
            Message::Update(_) => MSG_UPDATE,
            Message::Notification(_) => MSG_NOTIFICATION,
            Message::Keepalive => MSG_KEEPALIVE,
            Message::RouteRefresh { .. } => MSG_ROUTE_REFRESH,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::Keepalive => "KEEPALIVE",
            Message::RouteRefresh { .. } => "ROUTE-REFRESH",
        }
    }

    /// The whole message including the header.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Message::Open(o) => o.encode_body(&mut body),
            Message::Update(b) => body.extend_from_slice(b),
            Message::Notification(n) => {
                body.push(n.code);
                body.push(n.subcode);
                body.extend_from_slice(&n.data);
            }
            Message::Keepalive => {}
            Message::RouteRefresh { afi, safi } => {
                body.extend_from_slice(&afi.to_be_bytes());
                body.push(0);
                body.push(*safi);
            }
        }
        frame(self.type_code(), &body)
    }

    /// Decodes one complete message (header included), e.g. from [`split_frame`].
    pub fn decode(msg: &[u8]) -> Result<Message, BgpError> {
        let (typ, body) = check_header(msg)?;
        match typ {
            MSG_OPEN => Ok(Message::Open(Open::decode_body(body)?)),
            MSG_UPDATE => Ok(Message::Update(body.to_vec())),
            MSG_NOTIFICATION => match body {
                [code, subcode, data @ ..] => Ok(Message::Notification(Notification {
                    code: *code,
                    subcode: *subcode,
                    data: data.to_vec(),
                })),
                _ => Err(BgpError::NotificationTruncated(body.len())),
            },
            MSG_KEEPALIVE => Ok(Message::Keepalive),
            MSG_ROUTE_REFRESH => match body {
                [a0, a1, _subtype, safi] => Ok(Message::RouteRefresh {
                    afi: u16::from_be_bytes([*a0, *a1]),
                    safi: *safi,
                }),
                _ => Err(BgpError::RouteRefreshLength(msg.len() as u16)),
            },
            t => Err(BgpError::BadType(t)),
        }
    }
}

/// Wraps a body in the 19-octet header.
pub fn frame(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&[0xFF; 16]);
    out.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    out.push(typ);
    out.extend_from_slice(body);
    out
}

/// Validates the header of a complete message; returns (type, body).
fn check_header(msg: &[u8]) -> Result<(u8, &[u8]), BgpError> {
    if msg.len() < HEADER_LEN {
        return Err(BgpError::BadLength {
            len: msg.len() as u16,
            typ: 0,
        });
    }
    if msg[..16] != [0xFF; 16] {
        return Err(BgpError::NotSynchronized);
    }
    let len = u16::from_be_bytes([msg[16], msg[17]]);
    let typ = msg[18];
    if usize::from(len) != msg.len() {
        return Err(BgpError::BadLength { len, typ });
    }
    check_length(typ, len)?;
    Ok((typ, &msg[HEADER_LEN..]))
}

/// RFC 4271 §6.1 length checks per type.
fn check_length(typ: u8, len: u16) -> Result<(), BgpError> {
    let l = usize::from(len);
    let ok = l <= MAX_MESSAGE_LEN
        && match typ {
            MSG_OPEN => l >= HEADER_LEN + 10,
            MSG_UPDATE => l >= HEADER_LEN + 4,
            MSG_NOTIFICATION => l >= HEADER_LEN + 2,
            MSG_KEEPALIVE => l == HEADER_LEN,
            MSG_ROUTE_REFRESH => l == HEADER_LEN + 4,
            _ => l >= HEADER_LEN,
        };
    if ok {
        Ok(())
    } else {
        Err(BgpError::BadLength { len, typ })
    }
}

/// Splits one message off the front of a stream buffer: `Ok(Some(len))` when
/// a whole message of `len` octets is there, `Ok(None)` when more octets are
/// needed, an error when the header is bad (the session must end).
pub fn split_frame(buf: &[u8]) -> Result<Option<usize>, BgpError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16] != [0xFF; 16] {
        return Err(BgpError::NotSynchronized);
    }
    let len = u16::from_be_bytes([buf[16], buf[17]]);
    let typ = buf[18];
    if !(MSG_OPEN..=MSG_ROUTE_REFRESH).contains(&typ) {
        return Err(BgpError::BadType(typ));
    }
    check_length(typ, len)?;
    Ok((buf.len() >= usize::from(len)).then_some(usize::from(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Ipv4Addr {
        Ipv4Addr::new(127, 0, 0, 2)
    }

    #[test]
    fn open_round_trip() {
        let o = Open::new(65002, 90, id(), &[Family::Ipv4Unicast, Family::Ipv6Unicast]);
        let m = Message::Open(o.clone());
        let b = m.encode();
        assert_eq!(&b[..16], &[0xFF; 16]);
        assert_eq!(b[18], MSG_OPEN);
        assert_eq!(Message::decode(&b).unwrap(), m);
        assert_eq!(o.asn(), 65002);
        assert!(o.four_octet_as() && o.route_refresh());
        assert_eq!(o.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        // Known answer: version, AS, hold, id, params.
        assert_eq!(&b[19..29], &[4, 0xFD, 0xEA, 0, 90, 127, 0, 0, 2, 22]);
    }

    #[test]
    fn open_with_a_four_octet_asn_uses_as_trans() {
        let o = Open::new(4_200_000_001, 3, id(), &[Family::Ipv4Unicast]);
        assert_eq!(o.my_as, AS_TRANS);
        let Message::Open(back) = Message::decode(&Message::Open(o).encode()).unwrap() else {
            panic!("not an OPEN")
        };
        assert_eq!(back.asn(), 4_200_000_001);
    }

    #[test]
    fn open_of_frr_parses_with_unknown_capabilities() {
        // Capabilities as FRR 8.4 sends them (several parameters, unknown codes kept raw).
        let mut body = vec![4, 0xFD, 0xEA, 0, 3, 192, 0, 2, 2];
        let params: Vec<u8> = vec![
            2, 6, 1, 4, 0, 1, 0, 1, // MP ipv4 unicast
            2, 2, 0x80, 0, // old Cisco route refresh
            2, 2, 2, 0, // route refresh
            2, 6, 65, 4, 0, 0, 0xFD, 0xEA, // 4-octet AS
            2, 6, 69, 4, 0, 1, 1, 0, // add-path
            2, 4, 64, 2, 0x80, 120, // graceful restart
        ];
        body.push(params.len() as u8);
        body.extend_from_slice(&params);
        let Message::Open(o) = Message::decode(&frame(MSG_OPEN, &body)).unwrap() else {
            panic!("not an OPEN")
        };
        assert_eq!(o.asn(), 65002);
        assert!(o.route_refresh());
        assert_eq!(o.families(), vec![Family::Ipv4Unicast]);
        assert!(o.capabilities.contains(&Capability::Other {
            code: 69,
            value: vec![0, 1, 1, 0]
        }));
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// bgpd 8.4.4's OPEN to the plugin, captured with tshark in the lab.
    #[test]
    fn open_of_frr_8_4_golden() {
        let b = unhex(
            "ffffffffffffffffffffffffffffffff00710104fdea0003c00002025402060104000100010206010400020001020280000202020002024600020641040000fdea02020600020a45080001010100020101020649040272320002044002c0780210470e0001018000000000020180000000",
        );
        assert_eq!(split_frame(&b), Ok(Some(b.len())));
        let Message::Open(o) = Message::decode(&b).unwrap() else {
            panic!("not an OPEN")
        };
        assert_eq!(
            (o.asn(), o.hold_time, o.bgp_id),
            (65002, 3, Ipv4Addr::new(192, 0, 2, 2))
        );
        assert_eq!(o.families(), vec![Family::Ipv4Unicast, Family::Ipv6Unicast]);
        assert!(o.four_octet_as() && o.route_refresh());
        let others: Vec<u8> = o
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Other { code, .. } => Some(*code),
                _ => None,
            })
            .collect();
        // Cisco route refresh, enhanced route refresh, extended message (not
        // advertised by us, so bgpd keeps to 4096 octets), add-path, FQDN,
        // graceful restart, long-lived graceful restart.
        assert_eq!(others, vec![128, 70, 6, 69, 73, 64, 71]);
        assert!(o.capabilities.contains(&Capability::Other {
            code: 73,
            value: b"\x02r2\x00".to_vec()
        }));
    }

    #[test]
    fn no_multiprotocol_capability_means_ipv4_unicast() {
        let o = Open {
            version: 4,
            my_as: 1,
            hold_time: 0,
            bgp_id: id(),
            capabilities: vec![],
        };
        assert_eq!(o.families(), vec![Family::Ipv4Unicast]);
        let b = Message::Open(o.clone()).encode();
        assert_eq!(b.len(), HEADER_LEN + 10);
        assert_eq!(Message::decode(&b).unwrap(), Message::Open(o));
    }

    #[test]
    fn keepalive_notification_refresh_round_trip() {
        for m in [
            Message::Keepalive,
            Message::Notification(Notification {
                code: ERR_CEASE,
                subcode: CEASE_ADMIN_SHUTDOWN,
                data: b"\x03bye".to_vec(),
            }),
            Message::RouteRefresh { afi: 2, safi: 1 },
            Message::Update(vec![0, 0, 0, 0]),
        ] {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m, "{}", m.name());
        }
        assert_eq!(Message::Keepalive.encode().len(), 19);
        let n = Notification {
            code: ERR_CEASE,
            subcode: CEASE_ADMIN_SHUTDOWN,
            data: b"\x03bye".to_vec(),
        };
        assert_eq!(n.to_string(), "Cease (6/2): \"bye\"");
    }

    #[test]
    fn malformed_messages_are_typed_errors() {
        let mut ka = Message::Keepalive.encode();
        ka[3] = 0;
        assert_eq!(Message::decode(&ka), Err(BgpError::NotSynchronized));
        // KEEPALIVE with a body.
        let long = frame(MSG_KEEPALIVE, &[0]);
        assert!(matches!(
            Message::decode(&long),
            Err(BgpError::BadLength { len: 20, typ: 4 })
        ));
        assert_eq!(Message::decode(&frame(9, &[])), Err(BgpError::BadType(9)));
        // Truncated buffers never panic.
        let open = Message::Open(Open::new(1, 90, id(), &[Family::Ipv4Unicast])).encode();
        for n in 0..open.len() {
            let _ = Message::decode(&open[..n]);
            let _ = split_frame(&open[..n]);
        }
        // OPEN version 3.
        let mut o = open.clone();
        o[19] = 3;
        let e = Message::decode(&o).unwrap_err();
        assert_eq!(e, BgpError::UnsupportedVersion(3));
        assert_eq!((e.notification().code, e.notification().subcode), (2, 1));
        // Optional parameters length lies.
        let mut o = open.clone();
        o[28] += 1;
        assert!(matches!(
            Message::decode(&o),
            Err(BgpError::MalformedOpen(_))
        ));
        // A capability overrunning its parameter.
        let body = [4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 2, 1, 9];
        assert!(matches!(
            Message::decode(&frame(MSG_OPEN, &body)),
            Err(BgpError::MalformedOpen(_))
        ));
        // Unsupported optional parameter (type 1, authentication).
        let body = [4, 0, 1, 0, 90, 1, 1, 1, 1, 2, 1, 0];
        assert_eq!(
            Message::decode(&frame(MSG_OPEN, &body)),
            Err(BgpError::UnsupportedParam(1))
        );
        // Bad multiprotocol capability length.
        let body = [4, 0, 1, 0, 90, 1, 1, 1, 1, 5, 2, 3, 1, 1, 0];
        assert!(matches!(
            Message::decode(&frame(MSG_OPEN, &body)),
            Err(BgpError::MalformedOpen(_))
        ));
        assert!(matches!(
            Message::decode(&frame(MSG_NOTIFICATION, &[6])),
            Err(BgpError::BadLength { .. })
        ));
        assert!(matches!(
            Message::decode(&frame(MSG_ROUTE_REFRESH, &[0, 1, 0])),
            Err(BgpError::BadLength { .. })
        ));
    }

    #[test]
    fn framing_on_a_stream() {
        let mut buf = Message::Keepalive.encode();
        buf.extend(Message::RouteRefresh { afi: 1, safi: 1 }.encode());
        assert_eq!(split_frame(&buf[..10]), Ok(None));
        assert_eq!(split_frame(&buf), Ok(Some(19)));
        assert_eq!(split_frame(&buf[19..]), Ok(Some(23)));
        assert_eq!(split_frame(&buf[19..30]), Ok(None));
        let mut big = frame(MSG_UPDATE, &[0; 4]);
        big[16..18].copy_from_slice(&5000u16.to_be_bytes());
        assert!(matches!(
            split_frame(&big),
            Err(BgpError::BadLength { len: 5000, .. })
        ));
        let mut bad = Message::Keepalive.encode();
        bad[18] = 0;
        assert_eq!(split_frame(&bad), Err(BgpError::BadType(0)));
    }
}
