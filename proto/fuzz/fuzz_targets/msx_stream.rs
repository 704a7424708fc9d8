//! A TCP byte stream of framed MSX messages (Map-Bulk, sync channel), as a
//! peer could send it: framing and decoding never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::LispMessage;
use lisp_msx_proto::msx::frame;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((msg, used))) = frame::next_frame(rest) {
        if let Ok(m) = LispMessage::decode(msg) {
            let bytes = m.to_bytes().expect("a decoded message re-encodes");
            assert_eq!(LispMessage::decode(&bytes).expect("decodes again"), m);
        }
        rest = &rest[used..];
    }
});
