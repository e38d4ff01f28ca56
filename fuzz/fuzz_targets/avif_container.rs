//! The AVIF container parser (`pipeline::avif::read_container`) on
//! arbitrary bytes.
//!
//! The `transform` target cannot reach it: this workspace builds img-proxy
//! without `avif-decode` (its AV1 decoder runs in a child process that
//! re-executes the current binary, here the fuzzer), and without it an AVIF
//! source is refused before its container is read. The parser walks
//! untrusted box sizes, item references, grid layouts, clean apertures and
//! sample tables; checks, beyond "never panics": a size it accepts is not
//! zero, as every later step divides by it.

#![no_main]

use img_proxy::pipeline::avif::read_container;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((width, height)) = read_container(data) {
        assert!(width > 0 && height > 0, "accepted a {width}x{height} picture");
    }
});
