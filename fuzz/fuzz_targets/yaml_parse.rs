//! The YAML reader and writer on arbitrary bytes: no panic, no hang, no unbounded
//! memory; whatever parses is written, and what is written parses again to the same
//! value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookctl::render::yaml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(docs) = yaml::parse_stream(text) else {
        return;
    };
    for doc in &docs {
        let written = yaml::to_string(doc);
        if let Ok(again) = yaml::parse_stream(&written) {
            // Only strings with characters go-yaml itself rewrites (NEL, LS, PS) may differ.
            if !written.contains(['\u{85}', '\u{2028}', '\u{2029}']) && again.len() == 1 {
                assert_eq!(&again[0], doc, "round trip changed the value:\n{written}");
            }
        }
    }
});
