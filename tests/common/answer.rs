//! One `GET /image` answer read in full, and ways to ask for one.

use bytes::Bytes;
use reqwest::header::HeaderMap;

use super::{client, get_image_with, Node, Origin};
use img_proxy_test_support::{decode, dimensions, magic, quadrant_png};

/// `Accept` of a browser that takes AVIF.
pub const AVIF_FIRST: &str = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8";
/// `Accept` of a browser that takes WebP but not AVIF.
pub const WEBP_ONLY: &str = "image/webp,image/*,*/*;q=0.8";

/// Query pairs besides `url`.
pub type Query = &'static [(&'static str, &'static str)];

/// One answer, read in full so headers and body can be checked together.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub async fn read(r: reqwest::Response) -> Answer {
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.unwrap(),
        }
    }

    /// A header's value, or "" when absent.
    pub fn h(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a 200 whose `Content-Type` and magic bytes both say `mime`
    /// and whose pixels are `w` x `h`.
    pub fn image(&self, mime: &str, size: (u32, u32), what: &str) -> &Self {
        assert_eq!(self.status, 200, "{what}: {}", self.text());
        assert_eq!(self.h("content-type"), mime, "{what}: Content-Type");
        assert_eq!(magic(&self.body), Some(mime), "{what}: magic bytes");
        assert_eq!(dimensions(&self.body), size, "{what}: dimensions");
        self
    }

    /// Asserts an error answer: `status`, plain text, a reason containing
    /// `reason`.
    pub fn refused(&self, status: u16, reason: &str, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", self.text());
        assert!(
            self.h("content-type").starts_with("text/plain"),
            "{what}: Content-Type {}",
            self.h("content-type")
        );
        assert!(
            self.text().contains(reason),
            "{what}: {:?} does not say {reason:?}",
            self.text()
        );
        self
    }

    pub fn decode(&self) -> image::RgbaImage {
        decode(&self.body)
    }
}

/// `GET /image?url=<source>&<extra>`.
pub async fn ask(node: &Node, source: &str, extra: &[(&str, &str)]) -> Answer {
    ask_with(node, source, extra, None).await
}

/// [`ask`] with an `Accept` header.
pub async fn ask_with(
    node: &Node,
    source: &str,
    extra: &[(&str, &str)],
    accept: Option<&str>,
) -> Answer {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    Answer::read(get_image_with(node, source, extra, &headers).await).await
}

/// Sends one `GET /image` per value of `key`, all at once (a task each),
/// for tests about simultaneous arrivals; each task yields its value and
/// the answer.
pub fn ask_all_at_once(
    node: &Node,
    source: &str,
    key: &'static str,
    values: impl IntoIterator<Item = String>,
) -> Vec<tokio::task::JoinHandle<(String, Answer)>> {
    values
        .into_iter()
        .map(|v| {
            let url = node.url("/image");
            let source = source.to_string();
            tokio::spawn(async move {
                let r = client()
                    .get(url)
                    .query(&[("url", source.as_str()), (key, v.as_str())])
                    .send()
                    .await
                    .unwrap();
                (v, Answer::read(r).await)
            })
        })
        .collect()
}

/// A standalone node (no subcommand), up and answering.
pub async fn standalone(name: &str, env: &[(&str, String)]) -> Node {
    let node = Node::spawn("", name, env);
    node.wait_up().await;
    node
}

/// An origin holding a 64x48 quadrant PNG (`/files/q.png`), its URL, and a
/// standalone node to ask.
pub async fn quadrant_png_source(name: &str) -> (Origin, String, Node) {
    let origin = Origin::start().await;
    let src = origin.url(&origin.put("q.png", quadrant_png(64, 48), "image/png"));
    let node = standalone(name, &[]).await;
    (origin, src, node)
}
