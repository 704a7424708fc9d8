//! IPv6 contacts through bgpd 8.x: the "split" form.
//!
//! The draft carries an IPv6 contact in the IPv6 Address Specific Extended
//! Community attribute (25, RFC 5701). FRR 8.4.4 bgpd accepts that attribute
//! but never sends it on (checked with tshark: present on the plugin's
//! session into bgpd, absent from every UPDATE bgpd sends), so an IPv6
//! contact announced the draft's way does not reach the next AS.
//!
//! The split form puts the same 18 octets (contact, MS identifier) into
//! Extended Communities (attribute 16), which bgpd does pass on: four
//! transitive experimental communities (RFC 7153 0x80-0x8F; 0x83 by
//! default, §1.1 of wire-formats.md), sub-type = the MS-target sub-type:
//!
//! ```text
//! Type(8)=0x83 | Sub-type(8)=0xB0 | Index(8) | Payload(40)
//! Index = target number (6 bits) << 2 | part (2 bits)
//! parts 0..3 carry 20 octets: contact IPv6 (16) | MS id (16 bits) | 0x0000
//! ```
//! bgpd sorts communities, hence the explicit index. A receiver that does not
//! know the form sees four unknown transitive communities and ignores them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use lisp_msx_proto::bgp::{EC_V4_LEN, MsTarget};

/// Octets of payload in one community.
const CHUNK: usize = 5;
const PARTS: usize = 4;
/// Most IPv6 targets the index can number.
pub const MAX_TARGETS: usize = 64;

/// Attribute-16 bytes carrying `targets`' IPv6 members in the split form
/// (IPv4 targets are left out: they have their own form).
pub fn encode_split(targets: &[MsTarget], ec_type: u8, subtype: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, t) in targets
        .iter()
        .filter(|t| t.contact.is_ipv6())
        .take(MAX_TARGETS)
        .enumerate()
    {
        let IpAddr::V6(a) = t.contact else { continue };
        let mut payload = [0u8; CHUNK * PARTS];
        payload[..16].copy_from_slice(&a.octets());
        payload[16..18].copy_from_slice(&t.ms_id.to_be_bytes());
        for part in 0..PARTS {
            out.push(ec_type);
            out.push(subtype);
            out.push(((n as u8) << 2) | part as u8);
            out.extend_from_slice(&payload[part * CHUNK..(part + 1) * CHUNK]);
        }
    }
    out
}

/// The IPv6 targets found in an Extended Communities value (a whole number
/// of 8-octet communities; the caller has checked the length). Incomplete
/// or inconsistent groups are reported, not returned.
pub fn decode_split(attr16: &[u8], ec_type: u8, subtype: u8) -> (Vec<MsTarget>, Vec<String>) {
    let mut groups: BTreeMap<u8, [Option<[u8; CHUNK]>; PARTS]> = BTreeMap::new();
    let mut problems = Vec::new();
    for ec in attr16.chunks_exact(EC_V4_LEN) {
        if ec[0] != ec_type || ec[1] != subtype {
            continue;
        }
        let (n, part) = (ec[2] >> 2, usize::from(ec[2] & 3));
        let mut chunk = [0u8; CHUNK];
        chunk.copy_from_slice(&ec[3..8]);
        let slot = &mut groups.entry(n).or_default()[part];
        if slot.is_some_and(|c| c != chunk) {
            problems.push(format!(
                "split IPv6 contact #{n}: part {part} appears twice with different values"
            ));
        }
        *slot = Some(chunk);
    }
    let mut out = Vec::new();
    for (n, parts) in groups {
        if parts.iter().any(Option::is_none) {
            problems.push(format!(
                "split IPv6 contact #{n}: incomplete (has {} of 4 parts)",
                parts.iter().flatten().count()
            ));
            continue;
        }
        let mut payload = [0u8; CHUNK * PARTS];
        for (i, c) in parts.iter().flatten().enumerate() {
            payload[i * CHUNK..(i + 1) * CHUNK].copy_from_slice(c);
        }
        if payload[18..] != [0, 0] {
            problems.push(format!("split IPv6 contact #{n}: padding is not zero"));
            continue;
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(&payload[..16]);
        out.push(MsTarget::new(
            Ipv6Addr::from(a),
            u16::from_be_bytes([payload[16], payload[17]]),
        ));
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t6(s: &str, id: u16) -> MsTarget {
        MsTarget::new(s.parse::<Ipv6Addr>().unwrap(), id)
    }

    #[test]
    fn round_trip_through_a_sorting_speaker() {
        let targets = vec![
            t6("2001:db8:b::2", 6),
            MsTarget::new("198.51.100.6".parse::<IpAddr>().unwrap(), 1),
            t6("2001:db8::53", 0xFFFF),
        ];
        let v = encode_split(&targets, 0x83, 0xB0);
        assert_eq!(v.len(), 2 * 4 * 8);
        assert_eq!(&v[..3], &[0x83, 0xB0, 0]);
        // bgpd keeps communities sorted: shuffle them the same way.
        let mut ecs: Vec<&[u8]> = v.chunks(8).collect();
        ecs.sort();
        ecs.reverse();
        let mut mixed: Vec<u8> = vec![0x01, 0xB0, 198, 51, 100, 6, 0, 1];
        mixed.extend(ecs.concat());
        let (back, problems) = decode_split(&mixed, 0x83, 0xB0);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            back,
            vec![t6("2001:db8:b::2", 6), t6("2001:db8::53", 0xFFFF)]
        );
        // Another code point sees nothing.
        assert!(decode_split(&mixed, 0x84, 0xB0).0.is_empty());
    }

    #[test]
    fn incomplete_or_bad_groups_are_reported() {
        let v = encode_split(&[t6("2001:db8::1", 1)], 0x83, 0xB0);
        let (t, p) = decode_split(&v[..24], 0x83, 0xB0);
        assert!(t.is_empty());
        assert!(p[0].contains("incomplete"), "{p:?}");
        let mut bad = v.clone();
        bad[31] = 1; // padding of part 3
        let (t, p) = decode_split(&bad, 0x83, 0xB0);
        assert!(t.is_empty() && p[0].contains("padding"));
        let mut dup = v.clone();
        dup.extend_from_slice(&[0x83, 0xB0, 0, 9, 9, 9, 9, 9]);
        let (_, p) = decode_split(&dup, 0x83, 0xB0);
        assert!(p.iter().any(|s| s.contains("twice")));
        assert!(
            encode_split(
                &[MsTarget::new("192.0.2.1".parse::<IpAddr>().unwrap(), 1)],
                0x83,
                0xB0
            )
            .is_empty()
        );
    }
}
