//! The agent API: protobuf round trip and the JSON form lispctl prints.

use lisp_msx_proto::api::*;
use prost::Message;

#[test]
fn discovery_update_round_trips_and_renders_json() {
    let upd = DiscoveryUpdate {
        source: "ospf".into(),
        adapter: "ospf-msfd@r1".into(),
        full_set: true,
        systems: vec![DiscoveredSystem {
            key: "adv 192.0.2.3 inst 1 tlv 0".into(),
            kind: "ms+mr".into(),
            locators: vec!["192.0.2.3".into()],
            status: "enabled".into(),
            capabilities: 0b111,
            ..Default::default()
        }],
        withdrawn_keys: vec![],
        reachability: vec![ContactReachability {
            contact: "198.51.100.2".into(),
            reachable: false,
        }],
    };
    let bytes = upd.encode_to_vec();
    assert_eq!(DiscoveryUpdate::decode(bytes.as_slice()).unwrap(), upd);

    let json = serde_json::to_value(&upd).unwrap();
    assert_eq!(json["systems"][0]["locators"][0], "192.0.2.3");
    assert_eq!(json["reachability"][0]["reachable"], false);
    // Missing fields take their defaults, as in protobuf.
    let partial: DiscoveryUpdate = serde_json::from_str(r#"{"source":"bgp"}"#).unwrap();
    assert_eq!(partial.source, "bgp");
    assert!(partial.systems.is_empty());
}
