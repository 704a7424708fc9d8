//! Every LISP control message (incl. ECM and the MSX extensions): decoding
//! never panics, and whatever decodes re-encodes to bytes that decode to the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::LispMessage;
use lisp_msx_proto::lisp::{Ecm, MapRequest, data::DataHeader, map_register};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = LispMessage::decode(data) {
        let bytes = msg.to_bytes().expect("a decoded message re-encodes");
        let again = LispMessage::decode(&bytes).expect("re-encoded bytes decode");
        assert_eq!(again, msg);
    }
    let mut scratch = MapRequest::default();
    if scratch.decode_into(data).is_ok() {
        assert_eq!(Ok(&scratch), MapRequest::decode(data).as_ref());
    }
    let _ = Ecm::decode_headers(data);
    let _ = DataHeader::decode(data);
    let _ = map_register::verify_packet(data, b"key");
});
