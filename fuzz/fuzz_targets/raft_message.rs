//! Raft message decode: never panics, and the encoding is canonical — whatever decodes
//! re-encodes to exactly the input bytes, `encoded_len` included.
#![no_main]

use hovercraft_core::wire::raft::RaftMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = RaftMessage::decode(data) else {
        return;
    };
    assert_eq!(msg.encoded_len(), data.len());
    let mut out = Vec::new();
    msg.encode(&mut out);
    assert_eq!(out, data, "decode -> encode must give back the same bytes");
    let _ = msg.numbers_in_range();
    let _ = msg.r2p2_type();
});
