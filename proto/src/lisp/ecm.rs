//! Encapsulated Control Message (RFC 9301 §5.8): a LISP header, then an inner
//! IPv4 or IPv6 header, a UDP header and the inner control message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError};
use crate::lisp::{LispMessage, TYPE_ECM};
use crate::wire::Reader;

/// The inner IP and UDP headers of an ECM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InnerHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// TOS (IPv4) or traffic class (IPv6).
    pub tos: u8,
    /// IPv4 identification (0 for IPv6).
    pub ident: u16,
    /// IPv4 DF bit.
    pub dont_fragment: bool,
    /// IPv6 flow label (20 bits; 0 for IPv4).
    pub flow_label: u32,
}

impl InnerHeader {
    pub fn new(src: IpAddr, dst: IpAddr, src_port: u16, dst_port: u16) -> Self {
        InnerHeader {
            src,
            dst,
            src_port,
            dst_port,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_fragment: false,
            flow_label: 0,
        }
    }

    fn ip_len(&self) -> usize {
        if self.src.is_ipv4() { 20 } else { 40 }
    }
}

/// The ECM's own flags and its inner IP/UDP headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EcmHeader {
    /// S: LISP-SEC.
    pub security: bool,
    /// D: DDT-originated, a Map-Referral is wanted.
    pub ddt: bool,
    /// E: forward to the ETR.
    pub to_etr: bool,
    /// M: destined to a Map-Server.
    pub to_ms: bool,
    pub inner: InnerHeader,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ecm {
    pub header: EcmHeader,
    pub message: Box<LispMessage>,
}

/// Internet checksum over `parts`.
pub(crate) fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for p in parts {
        for &b in p.iter() {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, b])),
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let len = udp.len() as u32;
    let c = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ph = [0u8; 12];
            ph[..4].copy_from_slice(&s.octets());
            ph[4..8].copy_from_slice(&d.octets());
            ph[9] = 17;
            ph[10..12].copy_from_slice(&(len as u16).to_be_bytes());
            checksum(&[&ph, udp])
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ph = [0u8; 40];
            ph[..16].copy_from_slice(&s.octets());
            ph[16..32].copy_from_slice(&d.octets());
            ph[32..36].copy_from_slice(&len.to_be_bytes());
            ph[39] = 17;
            checksum(&[&ph, udp])
        }
        _ => 0,
    };
    // A computed 0 is sent as all ones (RFC 768).
    if c == 0 { 0xFFFF } else { c }
}

impl Ecm {
    /// Wraps `message` for the Map-Resolver: inner source is the ITR's, destination the EID.
    pub fn new(inner: InnerHeader, message: LispMessage) -> Self {
        Ecm {
            header: EcmHeader {
                security: false,
                ddt: false,
                to_etr: false,
                to_ms: false,
                inner,
            },
            message: Box::new(message),
        }
    }

    pub fn encode(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        if self.header.inner.src.is_ipv4() != self.header.inner.dst.is_ipv4() {
            return Err(EncodeError::Invalid {
                field: "ECM inner header",
                reason: "source and destination are of different families",
            });
        }
        if matches!(*self.message, LispMessage::Ecm(_)) {
            return Err(EncodeError::Invalid {
                field: "ECM inner message",
                reason: "an ECM may not carry another ECM",
            });
        }
        let f = &self.header;
        let mut w: u32 = u32::from(TYPE_ECM) << 28;
        w |= u32::from(f.security) << 27;
        w |= u32::from(f.ddt) << 26;
        w |= u32::from(f.to_etr) << 25;
        w |= u32::from(f.to_ms) << 24;
        buf.extend_from_slice(&w.to_be_bytes());

        let ip_start = buf.len();
        let h = &self.header.inner;
        buf.resize(ip_start + h.ip_len() + 8, 0);
        let udp_start = ip_start + h.ip_len();
        self.message.encode(buf)?;
        let udp_len = buf.len() - udp_start;
        if udp_len > u16::MAX as usize {
            return Err(EncodeError::Invalid {
                field: "ECM inner message",
                reason: "longer than a UDP datagram",
            });
        }
        {
            let udp = &mut buf[udp_start..];
            udp[0..2].copy_from_slice(&h.src_port.to_be_bytes());
            udp[2..4].copy_from_slice(&h.dst_port.to_be_bytes());
            udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        }
        let csum = udp_checksum(h.src, h.dst, &buf[udp_start..]);
        buf[udp_start + 6..udp_start + 8].copy_from_slice(&csum.to_be_bytes());

        let ip = &mut buf[ip_start..udp_start];
        match (h.src, h.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let total = 20 + udp_len;
                if total > u16::MAX as usize {
                    return Err(EncodeError::Invalid {
                        field: "ECM inner message",
                        reason: "longer than an IPv4 packet",
                    });
                }
                ip[0] = 0x45;
                ip[1] = h.tos;
                ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                ip[4..6].copy_from_slice(&h.ident.to_be_bytes());
                ip[6] = if h.dont_fragment { 0x40 } else { 0 };
                ip[7] = 0;
                ip[8] = h.ttl;
                ip[9] = 17;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let c = checksum(&[ip]);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let first = (6u32 << 28) | (u32::from(h.tos) << 20) | (h.flow_label & 0xF_FFFF);
                ip[0..4].copy_from_slice(&first.to_be_bytes());
                ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
                ip[6] = 17;
                ip[7] = h.ttl;
                ip[8..24].copy_from_slice(&s.octets());
                ip[24..40].copy_from_slice(&d.octets());
            }
            _ => unreachable!("families checked above"),
        }
        Ok(())
    }

    /// Decodes the ECM headers and returns the inner message bytes without
    /// decoding them (the Map-Resolver's fast path).
    pub fn decode_headers(buf: &[u8]) -> Result<(EcmHeader, &[u8]), DecodeError> {
        let mut r = Reader::new(buf);
        let w = r.u32("ECM header")?;
        if (w >> 28) as u8 != TYPE_ECM {
            return Err(DecodeError::UnknownType((w >> 28) as u8));
        }
        let (inner, payload) = Self::decode_inner_headers(&mut r)?;
        Ok((Self::header_from(w, inner), payload))
    }

    fn header_from(w: u32, inner: InnerHeader) -> EcmHeader {
        EcmHeader {
            security: w & (1 << 27) != 0,
            ddt: w & (1 << 26) != 0,
            to_etr: w & (1 << 25) != 0,
            to_ms: w & (1 << 24) != 0,
            inner,
        }
    }

    fn decode_inner_headers<'a>(
        r: &mut Reader<'a>,
    ) -> Result<(InnerHeader, &'a [u8]), DecodeError> {
        let first = r.rest().first().copied().ok_or(DecodeError::Truncated {
            field: "ECM inner IP header",
            needed: 1,
            available: 0,
        })?;
        let (mut h, ip_payload_len) = match first >> 4 {
            4 => {
                let hdr = r.take(20, "ECM inner IPv4 header")?;
                let ihl = usize::from(hdr[0] & 0x0F) * 4;
                if ihl < 20 {
                    return Err(DecodeError::Invalid {
                        field: "ECM inner IPv4 IHL",
                        reason: "shorter than 20 bytes",
                    });
                }
                let options = r.take(ihl - 20, "ECM inner IPv4 options")?;
                if checksum(&[hdr, options]) != 0 {
                    return Err(DecodeError::Invalid {
                        field: "ECM inner IPv4 checksum",
                        reason: "does not verify",
                    });
                }
                if hdr[9] != 17 {
                    return Err(DecodeError::BadValue {
                        field: "ECM inner IPv4 protocol",
                        value: hdr[9].into(),
                        reason: "is not UDP",
                    });
                }
                let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
                if frag & 0x3FFF != 0 {
                    return Err(DecodeError::Invalid {
                        field: "ECM inner IPv4 header",
                        reason: "fragmented inner packet",
                    });
                }
                let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
                let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
                let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
                let payload = total.checked_sub(ihl).ok_or(DecodeError::Invalid {
                    field: "ECM inner IPv4 total length",
                    reason: "shorter than the header",
                })?;
                (
                    InnerHeader {
                        src: IpAddr::V4(src),
                        dst: IpAddr::V4(dst),
                        src_port: 0,
                        dst_port: 0,
                        ttl: hdr[8],
                        tos: hdr[1],
                        ident: u16::from_be_bytes([hdr[4], hdr[5]]),
                        dont_fragment: frag & 0x4000 != 0,
                        flow_label: 0,
                    },
                    payload,
                )
            }
            6 => {
                let hdr = r.take(40, "ECM inner IPv6 header")?;
                let first = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
                if hdr[6] != 17 {
                    return Err(DecodeError::BadValue {
                        field: "ECM inner IPv6 next header",
                        value: hdr[6].into(),
                        reason: "is not UDP",
                    });
                }
                let src: [u8; 16] = hdr[8..24].try_into().expect("16 bytes");
                let dst: [u8; 16] = hdr[24..40].try_into().expect("16 bytes");
                (
                    InnerHeader {
                        src: IpAddr::V6(Ipv6Addr::from(src)),
                        dst: IpAddr::V6(Ipv6Addr::from(dst)),
                        src_port: 0,
                        dst_port: 0,
                        ttl: hdr[7],
                        tos: ((first >> 20) & 0xFF) as u8,
                        ident: 0,
                        dont_fragment: false,
                        flow_label: first & 0xF_FFFF,
                    },
                    usize::from(u16::from_be_bytes([hdr[4], hdr[5]])),
                )
            }
            v => {
                return Err(DecodeError::BadValue {
                    field: "ECM inner IP version",
                    value: v.into(),
                    reason: "is neither 4 nor 6",
                });
            }
        };
        let src_port = r.u16("ECM inner UDP source port")?;
        let dst_port = r.u16("ECM inner UDP destination port")?;
        let udp_len = usize::from(r.u16("ECM inner UDP length")?);
        r.u16("ECM inner UDP checksum")?;
        if udp_len < 8 || udp_len != ip_payload_len {
            return Err(DecodeError::Invalid {
                field: "ECM inner UDP length",
                reason: "disagrees with the IP payload length",
            });
        }
        h.src_port = src_port;
        h.dst_port = dst_port;
        let payload = r.take(udp_len - 8, "ECM inner message")?;
        r.finish()?;
        Ok((h, payload))
    }

    pub(crate) fn decode_body(w: u32, r: &mut Reader<'_>) -> Result<Ecm, DecodeError> {
        let (inner, payload) = Self::decode_inner_headers(r)?;
        if payload.first().map(|b| b >> 4) == Some(TYPE_ECM) {
            return Err(DecodeError::Invalid {
                field: "ECM inner message",
                reason: "an ECM may not carry another ECM",
            });
        }
        let message = LispMessage::decode(payload)?;
        Ok(Ecm {
            header: Self::header_from(w, inner),
            message: Box::new(message),
        })
    }
}
