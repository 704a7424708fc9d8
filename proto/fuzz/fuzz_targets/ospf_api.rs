//! The byte stream ospfd's API server sends us (sync replies, notifications).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::ospf::api::{ApiMessage, next_message};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Some((msg, used))) = next_message(rest) {
        if let Ok(bytes) = msg.to_bytes() {
            assert_eq!(ApiMessage::decode(&bytes).expect("decodes again"), msg);
        }
        rest = &rest[used..];
    }
});
