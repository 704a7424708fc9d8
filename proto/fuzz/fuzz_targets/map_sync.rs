//! Map-Sync messages and frames from a synchronization-set peer: never
//! panic; what decodes re-encodes to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lisp_msx_proto::msx::sync::{self, MapSync};

fuzz_target!(|data: &[u8]| {
    sync::fuzz_stream(data, sync::DEFAULT_SUBTYPE);
    if let Ok(m) = MapSync::decode(data, sync::DEFAULT_SUBTYPE) {
        let bytes = m
            .to_bytes(sync::DEFAULT_SUBTYPE)
            .expect("a decoded message re-encodes");
        assert_eq!(
            MapSync::decode(&bytes, sync::DEFAULT_SUBTYPE).expect("decodes again"),
            m
        );
    }
});
