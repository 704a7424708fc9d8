//! Property tests: encode→decode is the identity for every LISP and MSX
//! message; decode→encode reproduces the bytes; random bytes never panic.

mod common;

use lisp_msx_proto::LispMessage;
use lisp_msx_proto::msx::frame;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_is_identity(msg in common::message()) {
        let bytes = msg.to_bytes().expect("generated messages are encodable");
        let back = LispMessage::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e} on {}", msg.name())))?;
        prop_assert_eq!(&back, &msg);
        // decode→encode reproduces the bytes.
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn record_wire_len_is_exact(r in common::record()) {
        let mut bytes = Vec::new();
        r.encode(&mut bytes);
        prop_assert_eq!(bytes.len(), r.wire_len());
    }

    #[test]
    fn truncation_is_an_error_never_a_panic(msg in common::message(), cut in any::<prop::sample::Index>()) {
        let bytes = msg.to_bytes().unwrap();
        let n = cut.index(bytes.len());
        prop_assert!(LispMessage::decode(&bytes[..n]).is_err());
    }

    #[test]
    fn garbage_in_no_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = LispMessage::decode(&bytes);
        let _ = lisp_msx_proto::lisp::Ecm::decode_headers(&bytes);
        let _ = lisp_msx_proto::lisp::data::DataHeader::decode(&bytes);
        let _ = frame::next_frame(&bytes);
    }

    #[test]
    fn garbage_with_valid_type_no_panic(t in 1u8..16, sub in any::<u16>(), rest in prop::collection::vec(any::<u8>(), 0..300)) {
        // Steer random input past the type dispatch into every decoder.
        let mut bytes = vec![(t << 4) | ((sub >> 8) as u8 & 0x0F), sub as u8];
        bytes.extend_from_slice(&rest);
        let _ = LispMessage::decode(&bytes);
    }

    #[test]
    fn bit_flips_never_panic(msg in common::message(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = msg.to_bytes().unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let _ = LispMessage::decode(&bytes);
    }
}
