//! Concurrent gateway-cache misses of one key, merged into one request to
//! the worker.
//!
//! A hot image that is not in the gateway cache yet (first requests,
//! expired, purged) is typically asked for by many clients at once; each
//! would send its own `POST /v1/cache` to the owner, which merges their
//! fills but still answers every one. Here the first request of a key
//! leads: it asks the worker, and the requests that arrive while it waits
//! follow: they get a copy of its answer (unless the URL was purged after
//! the leader asked: then they ask themselves). If the leader goes away without
//! an answer (its client disconnected, or no worker answered), each
//! follower asks on its own, as it would have without merging.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::watch;

/// An answer as the leader got it, for its followers.
pub struct SharedAnswer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// When the leader asked, less the purge margin: a follower must not
    /// serve it if its URL was purged since (it may hold the old bytes).
    pub made_at: SystemTime,
}

impl SharedAnswer {
    /// A response of its own for one follower (the body is shared).
    pub fn response(&self) -> Response {
        let mut resp = Response::new(Body::from(self.body.clone()));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers.clone();
        resp
    }
}

type Slot = watch::Receiver<Option<Arc<SharedAnswer>>>;

/// The keys whose worker request is in flight.
#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashMap<String, Slot>>,
}

/// Whether a request leads the worker request for its key or follows one.
pub enum Turn<'a> {
    Lead(Leader<'a>),
    Follow(Slot),
}

impl InFlight {
    /// Joins the request in flight for `key`, or leads a new one.
    pub fn join(&self, key: &str) -> Turn<'_> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = keys.get(key) {
            if slot.has_changed().is_ok() {
                return Turn::Follow(slot.clone());
            }
        }
        let (tx, rx) = watch::channel(None);
        keys.insert(key.to_string(), rx.clone());
        Turn::Lead(Leader {
            in_flight: self,
            key: key.to_string(),
            tx,
            rx,
        })
    }
}

/// The leading request of a key; dropping it ends its turn (followers
/// then ask on their own unless it published an answer).
pub struct Leader<'a> {
    in_flight: &'a InFlight,
    key: String,
    tx: watch::Sender<Option<Arc<SharedAnswer>>>,
    rx: Slot,
}

impl Leader<'_> {
    /// Gives `resp`, asked at `made_at`, to the followers and hands it back.
    pub async fn publish(self, resp: Response, made_at: SystemTime) -> Response {
        let (head, body) = resp.into_parts();
        // The worker's answer was read whole already: one frame.
        let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
            return Response::from_parts(head, Body::empty());
        };
        let shared = SharedAnswer {
            status: head.status,
            headers: head.headers.clone(),
            body: body.clone(),
            made_at,
        };
        self.tx.send_replace(Some(Arc::new(shared)));
        Response::from_parts(head, Body::from(body))
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut keys = self
            .in_flight
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if keys
            .get(&self.key)
            .is_some_and(|s| s.same_channel(&self.rx))
        {
            keys.remove(&self.key);
        }
    }
}

/// The leader's answer, or `None` if it ended without one.
pub async fn follow(mut slot: Slot) -> Option<Arc<SharedAnswer>> {
    loop {
        if let Some(answer) = slot.borrow_and_update().clone() {
            return Some(answer);
        }
        slot.changed().await.ok()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_answer_and_a_new_request_leads_again() {
        let in_flight = InFlight::default();
        let Turn::Lead(leader) = in_flight.join("k") else {
            panic!("the first request leads")
        };
        let Turn::Follow(slot) = in_flight.join("k") else {
            panic!("the second request follows")
        };
        let waiting = tokio::spawn(follow(slot));
        let resp = leader
            .publish(Response::new(Body::from("bytes")), SystemTime::now())
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let answer = waiting.await.unwrap().expect("the leader's answer");
        let body = axum::body::to_bytes(answer.response().into_body(), 100).await;
        assert_eq!(&body.unwrap()[..], b"bytes");
        assert!(matches!(in_flight.join("k"), Turn::Lead(_)));
    }

    #[tokio::test]
    async fn followers_of_a_leader_gone_without_an_answer_get_none() {
        let in_flight = InFlight::default();
        let leader = in_flight.join("k");
        let Turn::Follow(slot) = in_flight.join("k") else {
            panic!("the second request follows")
        };
        drop(leader);
        assert!(follow(slot).await.is_none());
        assert!(matches!(in_flight.join("k"), Turn::Lead(_)));
    }
}
