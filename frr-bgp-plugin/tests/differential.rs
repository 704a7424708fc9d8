//! Differential tests: what our hand-written encoder produces is read by an
//! independent implementation (netgauze-bgp-pkt) without complaint, means the
//! same thing there, and netgauze writes it back octet for octet.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use frr_bgp_plugin::bgp::msg::{Message, Notification, Open};
use frr_bgp_plugin::bgp::prefix::{Family, Prefix};
use frr_bgp_plugin::bgp::update::{
    AsPath, Ctx, Origin, PathAttrs, announce_bodies, end_of_rib, withdraw_bodies,
};
use lisp_msx_proto::bgp::{MsTarget, MsTargetCodepoint, encode_ms_targets};
use netgauze_bgp_pkt::BgpMessage;
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::WritablePdu;
use netgauze_parse_utils::reader::SliceReader;
use netgauze_parse_utils::traits::ParseFromWithOneInput;

/// netgauze's view of `bytes`: parsed strictly (every malformed attribute is
/// an error), then written back.
fn through_netgauze(bytes: &[u8]) -> (BgpMessage, Vec<u8>) {
    let mut ctx =
        BgpParsingContext::new(true, HashMap::new(), HashMap::new(), true, true, true, true);
    let m = BgpMessage::parse(&mut SliceReader::new(bytes), &mut ctx)
        .unwrap_or_else(|e| panic!("netgauze refuses {bytes:02x?}: {e:?}"));
    let ignored = ctx.reset_parsing_errors();
    assert!(
        format!("{ignored:?}").contains("path_attr_errors: []"),
        "{ignored:?}"
    );
    let mut out = Vec::new();
    m.write(&mut out).expect("netgauze writes it back");
    (m, out)
}

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

#[test]
fn open() {
    let ours = Message::Open(Open::new(
        4_200_000_002,
        90,
        Ipv4Addr::new(127, 0, 0, 2),
        &[Family::Ipv4Unicast, Family::Ipv6Unicast],
    ))
    .encode();
    let (m, back) = through_netgauze(&ours);
    assert_eq!(back, ours);
    let BgpMessage::Open(o) = m else {
        panic!("{m:?}")
    };
    assert_eq!(o.my_asn4(), 4_200_000_002);
    let text = format!("{o:?}");
    for want in [
        "hold_time: 90",
        "bgp_id: 127.0.0.2",
        "Ipv4Unicast",
        "Ipv6Unicast",
        "RouteRefresh",
        "FourOctetAs",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
}

#[test]
fn ipv4_announcement_with_the_ms_target_community() {
    let t = MsTarget::new(Ipv4Addr::new(198, 51, 100, 6), 1);
    let (v4, _) = encode_ms_targets(&[t], &MsTargetCodepoint::default());
    let a = PathAttrs {
        origin: Origin::Igp,
        as_path: AsPath::sequence(&[65002, 4_200_000_000]),
        next_hop: Some("192.0.2.254".parse().unwrap()),
        local_pref: Some(100),
        med: Some(5),
        ext_communities: v4,
        ..Default::default()
    };
    for body in announce_bodies(
        &a,
        Family::Ipv4Unicast,
        &[p("203.0.113.0/24"), p("198.51.100.128/25")],
        &Ctx::default(),
    ) {
        let ours = Message::Update(body).encode();
        let (m, back) = through_netgauze(&ours);
        assert_eq!(back, ours);
        let text = format!("{m:?}");
        for want in [
            "TransitiveIpv4(Unassigned { sub_type: 176, global_admin: 198.51.100.6, local_admin: 1 })",
            "NextHop { next_hop: 192.0.2.254 }",
            "LocalPreference { metric: 100 }",
            "MultiExitDiscriminator { metric: 5 }",
            "[65002, 4200000000]",
            "Ipv4Unicast(203.0.113.0/24)",
            "Ipv4Unicast(198.51.100.128/25)",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
    }
}

#[test]
fn ipv6_announcement_with_attribute_25_and_the_split_form() {
    let t = MsTarget::new("2001:db8:b::2".parse::<IpAddr>().unwrap(), 6);
    let cp = MsTargetCodepoint::default();
    let (_, v6) = encode_ms_targets(&[t], &cp);
    let a = PathAttrs {
        next_hop: Some("2001:db8:ffff::fe".parse().unwrap()),
        local_pref: Some(100),
        ext_communities: frr_bgp_plugin::compat::encode_split(&[t], 0x83, cp.subtype),
        ipv6_ext_communities: v6,
        ..Default::default()
    };
    let body = announce_bodies(
        &a,
        Family::Ipv6Unicast,
        &[p("2001:db8:e::/48")],
        &Ctx::default(),
    )
    .remove(0);
    let ours = Message::Update(body).encode();
    let (m, back) = through_netgauze(&ours);
    assert_eq!(back, ours);
    let text = format!("{m:?}");
    for want in [
        "Ipv6Unicast(2001:db8:e::/48)",
        "2001:db8:ffff::fe",
        "ExtendedCommunitiesIpv6",
        "2001:db8:b::2",
        "Experimental",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
}

#[test]
fn withdrawals_end_of_rib_and_the_small_messages() {
    for body in withdraw_bodies(&[p("203.0.113.0/24"), p("2001:db8:e::/48")])
        .into_iter()
        .chain([
            end_of_rib(Family::Ipv4Unicast),
            end_of_rib(Family::Ipv6Unicast),
        ])
    {
        let ours = Message::Update(body).encode();
        let (_, back) = through_netgauze(&ours);
        assert_eq!(back, ours);
    }
    for m in [
        Message::Keepalive,
        Message::RouteRefresh { afi: 2, safi: 1 },
        Message::Notification(Notification {
            code: 6,
            subcode: 2,
            data: b"\x03bye".to_vec(),
        }),
        Message::Notification(Notification::new(4, 0)),
    ] {
        let ours = m.encode();
        let (_, back) = through_netgauze(&ours);
        assert_eq!(back, ours, "{}", m.name());
    }
}
