//! Each worker's fill URL, parsed once.
//!
//! Every request a gateway forwards is a `POST /v1/cache` to one worker:
//! formatting and parsing `http://<addr>/v1/cache` again for each of them
//! cost more than the rest of the routing, so the parsed URL is kept per
//! worker address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use axum::http::Uri;

use super::internal::{endpoint, Unreachable};
use crate::cluster::membership::Member;
use crate::protocol::FILL_PATH;

/// Addresses kept at most: members come and go (new addresses after
/// restarts), so the map is emptied when it reaches this size.
const MAX_WORKERS: usize = 1024;

/// `http://<worker>/v1/cache` by worker address.
#[derive(Default)]
pub struct FillUrls(Mutex<HashMap<SocketAddr, Uri>>);

impl FillUrls {
    /// The fill URL of `worker`.
    pub fn get(&self, worker: &Member) -> Result<Uri, Unreachable> {
        let mut urls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(url) = urls.get(&worker.http_addr) {
            return Ok(url.clone());
        }
        let url = endpoint(worker, FILL_PATH)?;
        if urls.len() >= MAX_WORKERS {
            urls.clear();
        }
        urls.insert(worker.http_addr, url.clone());
        Ok(url)
    }
}
