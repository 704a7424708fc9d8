//! Router Information LSAs and the MSFD TLV as another router floods them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::ospf::lsa::Lsa;
use lisp_msx_proto::ospf::msfd::{DEFAULT_MSFD_TLV_TYPE, Msfd, find_msfd};
use lisp_msx_proto::ospf::ri::decode_tlvs;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Msfd::decode(data) {
        let mut out = Vec::new();
        m.encode(&mut out).expect("a decoded MSFD re-encodes");
        assert_eq!(Msfd::decode(&out).expect("decodes again"), m);
    }
    let _ = decode_tlvs(data);
    let _ = find_msfd(data, DEFAULT_MSFD_TLV_TYPE);
    if let Ok(lsa) = Lsa::decode(data) {
        let _ = lsa.checksum_ok();
        let _ = find_msfd(&lsa.body, DEFAULT_MSFD_TLV_TYPE);
    }
});
