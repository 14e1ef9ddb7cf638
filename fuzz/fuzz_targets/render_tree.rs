//! A whole tree of arbitrary files (sections split by `%% name` lines) rendered by the
//! kustomize engine, as `lookctl render DIR --no-template` would. No panic, no hang,
//! and what renders is written out and parses back.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use lookctl::render::{kustomize, output, yaml};

#[path = "mem.rs"]
mod mem;

fuzz_target!(|data: &[u8]| {
    let tree = mem::MemTree::from_bytes(data);
    if let Ok(objects) = kustomize::build(&tree, Path::new("/t")) {
        let text = output::to_yaml_stream(&objects);
        assert!(yaml::parse_stream(&text).is_ok(), "unreadable output:\n{text}");
    }
});
