//! CPNP frames and JSON bodies from a peer: never panic; what decodes
//! re-encodes to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::cpnp::{CpnpMessage, decode_frame, encode_frame};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = CpnpMessage::decode(data) {
        let mut json = Vec::new();
        msg.encode(&mut json).expect("a decoded message re-encodes");
        assert_eq!(CpnpMessage::decode(&json).expect("decodes again"), msg);
        let framed = encode_frame(&msg, Some(b"psk")).expect("frames");
        let (back, used) = decode_frame(&framed, Some(b"psk")).expect("valid frame").expect("complete frame");
        assert_eq!((back, used), (msg, framed.len()));
    }
    let _ = decode_frame(data, None);
    let _ = decode_frame(data, Some(b"psk"));
});
