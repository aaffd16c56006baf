//! R2P2 header decode: never panics, and whatever decodes re-encodes to a header that decodes
//! to the same value (and, with the standard 8-byte size, to the same bytes).
#![no_main]

use hovercraft_core::wire::header::{Header, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((h, payload)) = Header::decode(data) else {
        return;
    };
    let size = usize::from(data[1]);
    assert!(size >= HEADER_LEN && size <= data.len());
    assert_eq!(
        payload,
        &data[size..],
        "the payload is what follows the header"
    );
    let enc = h.encode();
    let (again, rest) = Header::decode(&enc).expect("an encoded header decodes");
    assert_eq!(again, h);
    assert!(rest.is_empty());
    if size == HEADER_LEN {
        assert_eq!(enc[..], data[..HEADER_LEN], "8-byte headers are canonical");
    }
});
