//! The query and options parser, on arbitrary query strings.
//!
//! Input: the raw query string of `/image?...`. Checks, beyond "never
//! panics":
//! - a query that parses (`protocol::parse_image_query`, the gateway's and
//!   the worker's parser) round-trips through the internal request: the
//!   URL and `to_query` options, serialised and parsed again, give the
//!   same URL and the same normalised options (a mismatch would fetch or
//!   cache a different variant than the client asked for);
//! - the cache key is a function of the options alone;
//! - the signing canonical form and preset expansion accept any pairs.

#![no_main]

use img_proxy::edge::presets::Presets;
use img_proxy::edge::signature::canonical;
use img_proxy::pipeline::TransformOptions;
use img_proxy::protocol::parse_image_query;
use libfuzzer_sys::fuzz_target;

/// One preset of each kind, as an operator would configure them.
const PRESETS: &str = "thumb=w:300,h:300,fit:cover;avatar=w:64,h:64,fit:cover,format:webp";

fn edge_checks(query: &str) {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let _ = canonical(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for only in [false, true] {
        let presets = Presets::parse(PRESETS, only).expect("the fixed presets parse");
        if let Ok(Some(expanded)) = presets.expand(&pairs) {
            assert!(expanded.iter().all(|(k, _)| k != "preset"));
        }
    }
}

/// The worker's query for `url` and `opts`, as a gateway would send it.
fn internal_query(url: &url::Url, opts: &TransformOptions) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("url", url.as_str());
    for (k, v) in opts.to_query() {
        q.append_pair(k, &v);
    }
    q.finish()
}

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    edge_checks(&query);
    let Ok((url, requested)) = parse_image_query(Some(&query)) else {
        return;
    };
    for accept in [
        None,
        Some("image/avif,image/webp,*/*"),
        Some("image/webp;q=0"),
    ] {
        let opts = requested.resolve(accept).options.normalized();
        let internal = internal_query(&url, &opts);
        let (url2, again) = parse_image_query(Some(&internal)).expect("internal query parses");
        assert_eq!(url2, url, "url round trip through {internal:?}");
        let again = again.resolve(None).options.normalized();
        assert_eq!(again, opts, "options round trip through {internal:?}");
        assert_eq!(again.cache_key(), opts.cache_key());
    }
});
