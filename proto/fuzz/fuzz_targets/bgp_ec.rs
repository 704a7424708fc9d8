//! Extended-community attribute values as a BGP peer could send them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::bgp::{MsTarget, MsTargetCodepoint, ms_targets_in_ext_communities, ms_targets_in_ipv6_ext_communities};

fuzz_target!(|data: &[u8]| {
    let cp = MsTargetCodepoint::default();
    if let Ok(t) = MsTarget::decode(data) {
        assert_eq!(MsTarget::decode(&t.to_bytes(&cp)).expect("decodes again"), t);
    }
    let _ = ms_targets_in_ext_communities(data, &cp);
    let _ = ms_targets_in_ipv6_ext_communities(data, &cp);
});
