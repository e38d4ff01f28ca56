//! The open client connections of one node: how many there are, which are
//! still waiting for a request head, and which one to shed at the cap.
//!
//! A connection is in one of two phases. While it has a request being
//! answered it is *busy* and is never shed: the client has said what it
//! wants and we are working on it. Otherwise it is *awaiting a head*: newly
//! accepted, or idle between keep-alive requests. Those are what a
//! slow-header (slowloris) client holds open, so they carry a deadline
//! (`HEADER_READ_TIMEOUT` for a new connection, `KEEP_ALIVE_TIMEOUT` after a
//! request), and at the connection cap the one that has waited longest is
//! closed to make room for a newcomer whose request head has already
//! arrived whole, so a client that sends its request at once is served
//! even while thousands of slow clients keep the node at its cap. A
//! newcomer whose head is still incomplete gets the place only if the
//! longest waiter has waited [`MIN_WAIT_BEFORE_SHED`]; otherwise it is
//! refused at once, which costs the node a few system calls instead of a
//! connection's setup, so slow clients that reconnect as fast as they can
//! do not keep the accept queue (where new clients wait) long.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;

use super::reason::ReasonLabel;

/// How long a connection must have waited for its head before a newcomer
/// whose own head is incomplete may take its place.
pub const MIN_WAIT_BEFORE_SHED: Duration = Duration::from_secs(1);

/// Most connections shed but not yet closed by their tasks to make room
/// for newcomers whose heads are incomplete; past it those are refused
/// until the shed ones are gone. Descriptors in use stay within
/// `MAX_CONNECTIONS` plus this plus the newcomers with whole requests that
/// arrive while their predecessors close (in the reserve; an `EMFILE`
/// sheds and backs off).
pub const MAX_SHEDDING: usize = 64;

/// Whether a newcomer's request head had fully arrived when it was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    Complete,
    Incomplete,
}

/// Deadlines for connections that are not busy.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// From accept to a complete first request head.
    pub header_read: Duration,
    /// From the end of one answer to the complete next request head.
    pub keep_alive: Duration,
}

/// Why the node closed a connection itself (the `reason` label of
/// `img_proxy_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its request head did not arrive within `HEADER_READ_TIMEOUT`.
    HeaderTimeout,
    /// Idle past `KEEP_ALIVE_TIMEOUT` between requests.
    IdleTimeout,
    /// Shed at `MAX_CONNECTIONS` to make room for a newer connection.
    Shed,
    /// Accepted at `MAX_CONNECTIONS` with nothing to shed: answered 503.
    Refused,
}

impl CloseReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Shed => "shed",
            CloseReason::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    AwaitingHead { since: Instant, served_before: bool },
    Busy { requests: usize },
    Shed,
}

/// One connection's shared state: its phase, and a wake-up for its task
/// whenever the phase changes (a new deadline, or being shed).
///
/// Phase changes go through the registry's lock, which also keeps the
/// index of waiting connections by age, so that finding the longest waiter
/// at the cap is a lookup, not a scan: at the cap that happens for every
/// accepted connection.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    registry: Weak<Connections>,
    phase: Mutex<Phase>,
    changed: Notify,
}

/// What the connection's task should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep serving; re-check at this instant if still awaiting a head.
    WaitUntil(Option<Instant>),
    /// Close now, for this reason.
    Close(CloseReason),
}

fn lock(m: &Mutex<Phase>) -> MutexGuard<'_, Phase> {
    // Phase is a plain Copy value: a panic elsewhere cannot leave it torn.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    fn new(id: u64, registry: Weak<Connections>, now: Instant) -> Conn {
        Conn {
            id,
            registry,
            phase: Mutex::new(Phase::AwaitingHead {
                since: now,
                served_before: false,
            }),
            changed: Notify::new(),
        }
    }

    /// What to do at `now` under `deadlines`.
    pub fn next(&self, deadlines: Deadlines, now: Instant) -> Next {
        match *lock(&self.phase) {
            Phase::Shed => Next::Close(CloseReason::Shed),
            Phase::Busy { .. } => Next::WaitUntil(None),
            Phase::AwaitingHead {
                since,
                served_before,
            } => {
                let (limit, reason) = if served_before {
                    (deadlines.keep_alive, CloseReason::IdleTimeout)
                } else {
                    (deadlines.header_read, CloseReason::HeaderTimeout)
                };
                let deadline = since + limit;
                if now >= deadline {
                    Next::Close(reason)
                } else {
                    Next::WaitUntil(Some(deadline))
                }
            }
        }
    }

    /// Resolves when the phase has changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// A request head arrived: the connection is busy until its answer has
    /// been written.
    pub fn request_started(&self) {
        self.transition(|p| match p {
            Phase::Busy { requests } => Phase::Busy {
                requests: requests + 1,
            },
            Phase::AwaitingHead { .. } => Phase::Busy { requests: 1 },
            Phase::Shed => Phase::Shed,
        });
    }

    /// An answer has been written (or abandoned).
    pub fn request_finished(&self, now: Instant) {
        self.transition(|p| match p {
            Phase::Busy { requests } if requests > 1 => Phase::Busy {
                requests: requests - 1,
            },
            Phase::Busy { .. } | Phase::AwaitingHead { .. } => Phase::AwaitingHead {
                since: now,
                served_before: true,
            },
            Phase::Shed => Phase::Shed,
        });
    }

    /// Applies `f` to the phase, keeping the registry's index of waiting
    /// connections in step, and wakes the connection's task.
    fn transition(&self, f: impl FnOnce(Phase) -> Phase) {
        let registry = self.registry.upgrade();
        let mut open = registry.as_ref().map(|r| r.lock_open());
        let mut p = lock(&self.phase);
        let before = *p;
        *p = f(before);
        let after = *p;
        drop(p);
        if let Some(open) = open.as_mut() {
            if open.conns.contains_key(&self.id) {
                open.reindex(self.id, before, after);
            }
        }
        drop(open);
        self.changed.notify_one();
    }

    /// When it started waiting for a head, if it is waiting.
    fn awaiting_since(&self) -> Option<Instant> {
        match *lock(&self.phase) {
            Phase::AwaitingHead { since, .. } => Some(since),
            _ => None,
        }
    }

    fn is_shed(&self) -> bool {
        matches!(*lock(&self.phase), Phase::Shed)
    }

    fn shed(&self) {
        *lock(&self.phase) = Phase::Shed;
        self.changed.notify_one();
    }
}

/// Metrics about client connections.
#[derive(Clone, Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: Gauge,
    /// Connections the node closed itself, by [`CloseReason`].
    pub closed: Family<ReasonLabel, Counter>,
}

impl ConnectionMetrics {
    /// Counts one connection closed for `reason`.
    pub fn count_close(&self, reason: CloseReason) {
        self.closed
            .get_or_create(&ReasonLabel {
                reason: reason.as_str().to_string(),
            })
            .inc();
    }
}

/// Every open client connection, with the cap.
pub struct Connections {
    max: usize,
    open: Mutex<Open>,
    next_id: AtomicU64,
    metrics: ConnectionMetrics,
}

/// The registered connections and, for those awaiting a head, an index by
/// the time they started waiting.
#[derive(Default)]
struct Open {
    /// Every connection whose descriptor is open, shed ones included until
    /// their task has closed them.
    conns: HashMap<u64, Arc<Conn>>,
    waiting: BTreeSet<(Instant, u64)>,
    /// Shed but not yet closed.
    shedding: usize,
}

impl Open {
    fn reindex(&mut self, id: u64, before: Phase, after: Phase) {
        if let Phase::AwaitingHead { since, .. } = before {
            self.waiting.remove(&(since, id));
        }
        if let Phase::AwaitingHead { since, .. } = after {
            self.waiting.insert((since, id));
        }
    }

    /// Unregisters `id`; returns its connection.
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if conn.is_shed() {
            self.shedding -= 1;
        }
        if let Some(since) = conn.awaiting_since() {
            self.waiting.remove(&(since, id));
        }
        Some(conn)
    }

    /// Sheds the connection that has waited longest for a head: it stays
    /// registered (its descriptor is open) until its task closes it.
    fn shed_oldest(&mut self) -> bool {
        let Some((_, id)) = self.waiting.pop_first() else {
            return false;
        };
        if let Some(conn) = self.conns.get(&id) {
            conn.shed();
            self.shedding += 1;
        }
        true
    }

    /// Connections that count against the cap: open and not being shed.
    fn live(&self) -> usize {
        self.conns.len() - self.shedding
    }
}

/// A registered connection; dropping it unregisters it.
pub struct Registered {
    id: u64,
    pub conn: Arc<Conn>,
    registry: Arc<Connections>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.registry.lock_open();
        open.remove(self.id);
        self.registry.metrics.open.set(open.conns.len() as i64);
    }
}

impl Connections {
    /// A registry allowing at most `max` open connections.
    pub fn new(max: usize, metrics: ConnectionMetrics) -> Arc<Connections> {
        Arc::new(Connections {
            max,
            open: Mutex::new(Open::default()),
            next_id: AtomicU64::new(0),
            metrics,
        })
    }

    fn lock_open(&self) -> MutexGuard<'_, Open> {
        // Every update leaves the map and index consistent before it can
        // panic (they only insert and remove).
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the next connection would be past the cap.
    pub fn at_cap(&self) -> bool {
        self.lock_open().live() >= self.max
    }

    /// Registers a just-accepted connection. At the cap, sheds the
    /// connection that has waited longest for a request head, if `head` is
    /// complete or that one has waited [`MIN_WAIT_BEFORE_SHED`]; otherwise
    /// (or when every connection is busy) returns `None` and the caller
    /// refuses the newcomer.
    pub fn admit(self: &Arc<Self>, now: Instant, head: Head) -> Option<Registered> {
        let mut open = self.lock_open();
        if open.live() >= self.max {
            if open.shedding >= MAX_SHEDDING && head == Head::Incomplete {
                return None;
            }
            let &(since, _) = open.waiting.first()?;
            let waited_long = since + MIN_WAIT_BEFORE_SHED <= now;
            if head == Head::Incomplete && !waited_long {
                return None;
            }
            open.shed_oldest();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(id, Arc::downgrade(self), now));
        open.conns.insert(id, Arc::clone(&conn));
        open.waiting.insert((now, id));
        self.metrics.open.set(open.conns.len() as i64);
        Some(Registered {
            id,
            conn,
            registry: Arc::clone(self),
        })
    }

    /// Sheds the connection that has waited longest for a head, if any:
    /// used when the process runs out of descriptors anyway.
    pub fn shed_oldest(&self) -> bool {
        let mut open = self.lock_open();
        let shed = open.shed_oldest();
        self.metrics.open.set(open.conns.len() as i64);
        shed
    }

    /// Connections open now (shed ones not yet closed included).
    pub fn len(&self) -> usize {
        self.lock_open().conns.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The metrics, for the serve loop's own counts.
    pub fn metrics(&self) -> &ConnectionMetrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        header_read: Duration::from_secs(10),
        keep_alive: Duration::from_secs(60),
    };

    #[test]
    fn new_connection_has_the_header_deadline_then_busy_then_keep_alive() {
        let t0 = Instant::now();
        let c = Conn::new(0, Weak::new(), t0);
        assert_eq!(
            c.next(D, t0),
            Next::WaitUntil(Some(t0 + Duration::from_secs(10)))
        );
        assert_eq!(
            c.next(D, t0 + Duration::from_secs(10)),
            Next::Close(CloseReason::HeaderTimeout)
        );
        c.request_started();
        assert_eq!(
            c.next(D, t0 + Duration::from_secs(100)),
            Next::WaitUntil(None)
        );
        let t1 = t0 + Duration::from_secs(5);
        c.request_finished(t1);
        assert_eq!(
            c.next(D, t1 + Duration::from_secs(59)),
            Next::WaitUntil(Some(t1 + Duration::from_secs(60)))
        );
        assert_eq!(
            c.next(D, t1 + Duration::from_secs(60)),
            Next::Close(CloseReason::IdleTimeout)
        );
    }

    #[test]
    fn pipelined_requests_keep_it_busy_until_the_last_answer() {
        let t0 = Instant::now();
        let c = Conn::new(0, Weak::new(), t0);
        c.request_started();
        c.request_started();
        c.request_finished(t0);
        assert_eq!(
            c.next(D, t0 + Duration::from_secs(999)),
            Next::WaitUntil(None)
        );
        c.request_finished(t0);
        assert!(matches!(c.next(D, t0), Next::WaitUntil(Some(_))));
    }

    #[test]
    fn at_the_cap_the_oldest_waiting_connection_is_shed_not_busy_ones() {
        let reg = Connections::new(3, ConnectionMetrics::default());
        let t0 = Instant::now();
        let busy = reg.admit(t0, Head::Complete).unwrap();
        busy.conn.request_started();
        let oldest_waiting = reg
            .admit(t0 + Duration::from_millis(1), Head::Complete)
            .unwrap();
        let newer_waiting = reg
            .admit(t0 + Duration::from_millis(2), Head::Complete)
            .unwrap();
        assert_eq!(reg.len(), 3);

        let fourth = reg
            .admit(t0 + Duration::from_millis(3), Head::Complete)
            .unwrap();
        assert_eq!(
            oldest_waiting.conn.next(D, t0),
            Next::Close(CloseReason::Shed)
        );
        assert!(matches!(newer_waiting.conn.next(D, t0), Next::WaitUntil(_)));
        assert_eq!(busy.conn.next(D, t0), Next::WaitUntil(None));
        assert_eq!(reg.len(), 4, "a shed connection counts until it is closed");
        assert!(reg.at_cap());
        drop(oldest_waiting);
        assert_eq!(reg.len(), 3);
        drop(fourth);
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn at_the_cap_with_every_connection_busy_the_new_one_is_refused() {
        let reg = Connections::new(2, ConnectionMetrics::default());
        let t0 = Instant::now();
        let a = reg.admit(t0, Head::Complete).unwrap();
        let b = reg.admit(t0, Head::Complete).unwrap();
        a.conn.request_started();
        b.conn.request_started();
        assert!(reg.admit(t0, Head::Complete).is_none());
        assert!(!reg.shed_oldest());
        b.conn.request_finished(t0);
        assert!(reg.admit(t0, Head::Complete).is_some());
    }

    #[test]
    fn an_incomplete_newcomer_displaces_only_a_connection_waiting_a_second() {
        let reg = Connections::new(1, ConnectionMetrics::default());
        let t0 = Instant::now();
        let old = reg.admit(t0, Head::Complete).unwrap();
        let early = reg.admit(t0 + Duration::from_millis(999), Head::Incomplete);
        assert!(early.is_none());
        assert!(matches!(old.conn.next(D, t0), Next::WaitUntil(_)));
        let newer = reg.admit(t0 + MIN_WAIT_BEFORE_SHED, Head::Incomplete);
        assert!(newer.is_some());
        assert_eq!(old.conn.next(D, t0), Next::Close(CloseReason::Shed));
    }

    #[test]
    fn an_idle_keep_alive_connection_is_shed_before_a_newer_one() {
        let reg = Connections::new(2, ConnectionMetrics::default());
        let t0 = Instant::now();
        let kept = reg.admit(t0, Head::Complete).unwrap();
        let fresh = reg
            .admit(t0 + Duration::from_millis(5), Head::Complete)
            .unwrap();
        kept.conn.request_started();
        kept.conn.request_finished(t0 + Duration::from_millis(1));
        let _third = reg
            .admit(t0 + Duration::from_millis(6), Head::Complete)
            .unwrap();
        assert_eq!(kept.conn.next(D, t0), Next::Close(CloseReason::Shed));
        assert!(matches!(fresh.conn.next(D, t0), Next::WaitUntil(_)));
    }
}
