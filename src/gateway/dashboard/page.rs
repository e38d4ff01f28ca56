//! The `/dashboard` page: one self-contained HTML document (inline CSS,
//! JS and SVG, no other request than `dashboard.json`) under a strict
//! `Content-Security-Policy` that allows exactly its own style and script
//! by their SHA-256 hashes, computed here from the very bytes served.

use base64::Engine as _;
use sha2::{Digest, Sha256};

const HTML: &str = include_str!("dashboard.html");
const CSS: &str = include_str!("dashboard.css");
const JS: &str = include_str!("dashboard.js");

/// The page and the policy it is served with.
pub struct Page {
    pub html: String,
    pub csp: String,
}

fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Assembles the page: the style and script go inline, byte for byte as
/// hashed.
pub fn build() -> Page {
    let html = HTML
        .replacen("/*STYLE*/", CSS, 1)
        .replacen("/*SCRIPT*/", JS, 1);
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {}; img-src data:; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(JS),
        csp_hash(CSS)
    );
    Page { html, csp }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text between `open` and the next `close`.
    fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
        let start = s.find(open).unwrap() + open.len();
        &s[start..start + s[start..].find(close).unwrap()]
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_style_and_script() {
        let page = build();
        let style = between(&page.html, "<style>", "</style>");
        let script = between(&page.html, "<script>", "</script>");
        assert!(page
            .csp
            .contains(&format!("script-src {};", csp_hash(script))));
        assert!(page
            .csp
            .contains(&format!("style-src {};", csp_hash(style))));
        assert!(!page.csp.contains("unsafe"));
        assert_eq!(page.html.matches("<script").count(), 1);
        // Nothing loaded from elsewhere: no src, no stylesheet link, no url().
        assert!(!page.html.contains(" src=") && !page.html.contains("url("));
        assert!(!page.html.contains("stylesheet"));
    }
}
