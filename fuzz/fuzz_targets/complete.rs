//! The completeness check (`pipeline::complete`), on arbitrary bytes.
//!
//! Input: a body as an origin could send it. Checks, beyond "never
//! panics" (it walks untrusted length fields): for every format, not only
//! the sniffed one, the walk terminates; and a JPEG, PNG, GIF or WebP
//! found complete stays complete with bytes appended (data after the end
//! marker is allowed, as browsers allow it). AVIF has no end marker (its
//! top-level boxes run to the end of the file), so a tail that is not a
//! whole box may rightly make it incomplete.

#![no_main]

use img_proxy::pipeline::complete::check_complete;
use img_proxy::pipeline::sniff::{sniff, SourceFormat};
use libfuzzer_sys::fuzz_target;

const FORMATS: [SourceFormat; 5] = [
    SourceFormat::Jpeg,
    SourceFormat::Png,
    SourceFormat::Gif,
    SourceFormat::WebP,
    SourceFormat::Avif,
];

fuzz_target!(|data: &[u8]| {
    for format in FORMATS {
        let _ = check_complete(data, format);
    }
    let Some(format) = sniff(data) else {
        return;
    };
    if format != SourceFormat::Avif && check_complete(data, format).is_ok() {
        let mut longer = data.to_vec();
        longer.extend_from_slice(&[0, 0xff, 0xd9, 0x00]);
        assert!(
            check_complete(&longer, format).is_ok(),
            "complete {format:?} became incomplete with a tail"
        );
    }
});
