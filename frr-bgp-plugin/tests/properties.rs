//! Properties of the hand-written codecs: arbitrary input never panics (it is
//! a value or a typed error), and what we encode decodes to the same thing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use frr_bgp_plugin::bgp::msg::{Message, split_frame};
use frr_bgp_plugin::bgp::prefix::{Family, Prefix};
use frr_bgp_plugin::bgp::update::{
    AsPath, Ctx, PathAttrs, announce_bodies, decode_update, withdraw_bodies,
};
use frr_bgp_plugin::zapi::msg as zapi;
use proptest::prelude::*;

fn ctxs() -> [Ctx; 3] {
    [
        Ctx::default(),
        Ctx {
            four_octet_as: false,
            ..Ctx::default()
        },
        Ctx {
            ipv6: false,
            ..Ctx::default()
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn bgp_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = split_frame(&bytes);
        let _ = Message::decode(&bytes);
        for c in ctxs() {
            let _ = decode_update(&bytes, &c);
        }
        let _ = Prefix::decode_all(&bytes, Family::Ipv4Unicast);
        let _ = Prefix::decode_all(&bytes, Family::Ipv6Unicast);
        let _ = frr_bgp_plugin::compat::decode_split(&bytes[..bytes.len() / 8 * 8], 0x83, 0xB0);
    }

    /// UPDATE bodies that start well-formed and then have octets flipped.
    #[test]
    fn mutated_updates_never_panic(idx in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let a = PathAttrs {
            as_path: AsPath::sequence(&[65001, 65002]),
            next_hop: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            local_pref: Some(100),
            ext_communities: vec![0x01, 0xB0, 198, 51, 100, 6, 0, 1],
            ..Default::default()
        };
        let mut b = announce_bodies(&a, Family::Ipv4Unicast, &["203.0.113.0/24".parse().unwrap()], &Ctx::default()).remove(0);
        let i = idx.index(b.len());
        b[i] = val;
        let n = cut.index(b.len() + 1);
        for c in ctxs() {
            let _ = decode_update(&b[..n], &c);
        }
    }

    #[test]
    fn zapi_decoders_never_panic(cmd in 0u16..40, vrf in any::<u32>(), body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let f = zapi::frame(cmd, vrf, &body);
        if let Ok(Some((h, n))) = zapi::split_frame(&f) {
            let _ = zapi::decode(&h, &f[zapi::HEADER_LEN..n]);
        }
        let _ = zapi::split_frame(&body);
    }

    #[test]
    fn announcements_round_trip(
        path in proptest::collection::vec(1u32.., 0..40),
        lp in any::<Option<u32>>(),
        med in any::<Option<u32>>(),
        communities in proptest::collection::vec(any::<u32>(), 0..10),
        ecs in proptest::collection::vec(any::<[u8; 8]>(), 0..40),
        v4 in proptest::collection::btree_set((any::<u32>(), 0u8..=32), 1..300),
        v6 in proptest::collection::btree_set((any::<u128>(), 0u8..=128), 1..200),
        nh4 in any::<u32>(),
        nh6 in any::<u128>(),
    ) {
        let base = PathAttrs {
            as_path: AsPath::sequence(&path),
            local_pref: lp,
            med,
            communities,
            ext_communities: ecs.concat(),
            ..Default::default()
        };
        let c = Ctx::default();
        let p4: Vec<Prefix> = v4.iter().map(|(a, l)| Prefix::new(IpAddr::V4(Ipv4Addr::from(*a)), *l).unwrap()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        let p6: Vec<Prefix> = v6.iter().map(|(a, l)| Prefix::new(IpAddr::V6(Ipv6Addr::from(*a)), *l).unwrap()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        for (family, prefixes, nh) in [
            (Family::Ipv4Unicast, &p4, IpAddr::V4(Ipv4Addr::from(nh4))),
            (Family::Ipv6Unicast, &p6, IpAddr::V6(Ipv6Addr::from(nh6))),
        ] {
            let a = PathAttrs { next_hop: Some(nh), ..base.clone() };
            let mut back = Vec::new();
            for body in announce_bodies(&a, family, prefixes, &c) {
                prop_assert!(body.len() + 19 <= 4096);
                let u = decode_update(&body, &c).unwrap();
                prop_assert!(u.problems.is_empty(), "{:?}", u.problems);
                prop_assert_eq!(&u.attrs, &a);
                back.extend(u.announced);
            }
            prop_assert_eq!(&back, prefixes);
            let mut gone = Vec::new();
            for body in withdraw_bodies(prefixes) {
                prop_assert!(body.len() + 19 <= 4096);
                gone.extend(decode_update(&body, &c).unwrap().withdrawn);
            }
            prop_assert_eq!(&gone, prefixes);
        }
    }
}
