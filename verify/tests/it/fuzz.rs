//! Property tests: the decoders never panic on arbitrary bytes, and malformed ids are
//! typed errors.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// No input makes the decoders panic; they answer Ok or a typed error.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = verify::otlp::decode_protobuf(&bytes);
        let _ = verify::otlp::decode_json(&bytes);
        let _ = verify::jaeger::parse(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = verify::otlp::decode_json_lines(text);
            let _ = verify::spec::parse("fuzz.spec", text);
        }
    }

    /// Structurally plausible JSON with wrong-sized ids and odd values is refused cleanly.
    #[test]
    fn odd_ids_are_typed_errors(tid in "[0-9a-f]{0,40}", sid in "[0-9a-f]{0,20}", kind in 0i32..9) {
        let json = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{tid}","spanId":"{sid}","name":"x","kind":{kind},"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#);
        if let Ok(spans) = verify::otlp::decode_json(json.as_bytes()) {
            prop_assert!(spans.iter().all(|s| s.trace_id.len() == 32 && s.span_id.len() == 16));
        }
    }
}
