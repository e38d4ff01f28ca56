//! A bounded CPU pool for image work.
//!
//! Decoding and encoding are CPU-bound for tens to hundreds of
//! milliseconds; on the async runtime they would stall every other request
//! on that thread. `spawn_blocking` is not an answer either: its pool grows
//! to hundreds of threads, so a burst of cache misses would oversubscribe
//! the cores and push every response's latency up together. Here a fixed
//! number of threads (one per core) pulls from a bounded queue; when the
//! queue is full, [`Pool::run`] fails at once with [`PoolError::Busy`] so
//! the server can answer 503 with `Retry-After` instead of queueing
//! unboundedly. A bounded queue still bounds only how many jobs wait, not
//! how long: 64 large photos queued behind two threads wait for a minute.
//! So a job also has a deadline to start (`QUEUE_TIMEOUT`): past it, its
//! caller gets [`PoolError::QueueTimeout`] (503 with `Retry-After`) at
//! once, and the job is skipped when a thread reaches it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why [`Pool::run`] did not return the job's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every thread is busy and the queue is full: shed load (503 with
    /// `Retry-After`).
    #[error("image workers are busy")]
    Busy,
    /// The job was admitted but no thread took it within the queue
    /// deadline: shed load (503 with `Retry-After`); it never runs.
    #[error("no image worker was free within {0:?}")]
    QueueTimeout(Duration),
    /// The job panicked. The thread survived; the caller gets this (500).
    #[error("image job panicked: {0}")]
    Panicked(String),
}

/// Handle to the pool. Cheap to clone; the threads exit when the last
/// handle is dropped and the queue has drained.
#[derive(Clone, Debug)]
pub struct Pool {
    tx: SyncSender<Job>,
    threads: usize,
    /// Jobs accepted and not yet finished (running or waiting). Admission
    /// is decided on this count, not on whether the channel has room: idle
    /// threads take turns waiting on the channel (one holds the receiver
    /// lock, the others wait for it), so with a small queue the channel
    /// alone would refuse jobs while a thread sits idle.
    in_pool: Arc<AtomicUsize>,
    /// `threads + max_queue`: one running job per thread plus the queue.
    capacity: usize,
    /// How long an admitted job may wait for a thread (`QUEUE_TIMEOUT`).
    queue_timeout: Duration,
}

/// Where a job is: waiting in the queue, taken by a thread, or given up by
/// its caller at the queue deadline. Exactly one of the thread and the
/// caller moves it out of `QUEUED`, so a job either runs or is refused,
/// never both.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// Counts a job as in the pool until dropped (when it has run, or was
/// skipped, or could not be sent).
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    /// Starts `threads` worker threads (at least one) sharing a queue of at
    /// most `max_queue` waiting jobs: at most `threads + max_queue` jobs
    /// are accepted at a time. With `max_queue == 0` a job is accepted
    /// exactly when a thread is idle. A job that no thread has taken
    /// `queue_timeout` after it was accepted is refused.
    pub fn new(threads: usize, max_queue: usize, queue_timeout: Duration) -> Pool {
        let threads = threads.max(1);
        let capacity = threads.saturating_add(max_queue);
        // Room for every admitted job, so a send never fails for lack of
        // room; `in_pool` is what bounds the queue.
        let (tx, rx) = sync_channel::<Job>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("img-pool-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                // Fewer threads still work; none at all is reported by run()
                // never completing, so log loudly.
                tracing::error!("could not start image pool thread: {e}");
            }
        }
        Pool {
            tx,
            threads,
            in_pool: Arc::new(AtomicUsize::new(0)),
            capacity,
            queue_timeout,
        }
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on a pool thread and waits for its result without
    /// blocking the async runtime. Fails immediately with
    /// [`PoolError::Busy`] when the queue is full, and with
    /// [`PoolError::QueueTimeout`] when no thread took the job within the
    /// queue deadline (a job that has started is waited for to the end); a
    /// panicking job yields [`PoolError::Panicked`] and leaves the thread
    /// alive. If the caller stops waiting (request cancelled) before the
    /// job starts, the job is skipped.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let capacity = self.capacity;
        let admitted = self
            .in_pool
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            });
        if admitted.is_err() {
            return Err(PoolError::Busy);
        }
        let admitted = Admitted(Arc::clone(&self.in_pool));
        let (done_tx, mut done_rx) = oneshot::channel::<Result<T, PoolError>>();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let taken = Arc::clone(&state);
        let wrapped: Job = Box::new(move || {
            let start =
                taken.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire);
            if start.is_err() || done_tx.is_closed() {
                return;
            }
            let r = catch_unwind(AssertUnwindSafe(job)).map_err(|p| {
                PoolError::Panicked(
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into()),
                )
            });
            // Leave the pool before answering, so that whoever gets the
            // answer can submit the next job at once.
            drop(admitted);
            let _ = done_tx.send(r);
        });
        match self.tx.try_send(wrapped) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                return Err(PoolError::Busy)
            }
        }
        let gone = |_| Err(PoolError::Panicked("worker thread is gone".into()));
        match tokio::time::timeout(self.queue_timeout, &mut done_rx).await {
            Ok(done) => done.unwrap_or_else(gone),
            Err(_) => {
                let give_up =
                    state.compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
                match give_up {
                    // Still queued: it will be skipped (its place in the
                    // queue is freed when a thread reaches it).
                    Ok(_) => Err(PoolError::QueueTimeout(self.queue_timeout)),
                    // Running: its CPU is spent anyway; wait for it.
                    Err(_) => done_rx.await.unwrap_or_else(gone),
                }
            }
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        // Hold the lock only while waiting for the next job.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            // Jobs catch their own panics; this outer guard is for the
            // impossible case and keeps the thread alive regardless.
            Ok(job) => {
                let _ = catch_unwind(AssertUnwindSafe(job));
            }
            Err(_) => return, // all senders dropped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::channel;
    use std::time::{Duration, Instant};

    /// Longer than any test runs.
    const NO_DEADLINE: Duration = Duration::from_secs(600);

    /// Occupies the pool's only thread until the returned sender is used
    /// (or dropped); returns once the job is running.
    fn hold_thread(
        pool: &Pool,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<(), PoolError>>,
    ) {
        let (release_tx, release_rx) = channel::<()>();
        let (started_tx, started_rx) = channel::<()>();
        let p = pool.clone();
        let running = tokio::spawn(async move {
            p.run(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv_timeout(Duration::from_secs(30));
            })
            .await
        });
        started_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        (release_tx, running)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_job_past_its_deadline_is_refused_and_never_runs() {
        let deadline = Duration::from_secs(1);
        let pool = Pool::new(1, 4, deadline);
        let (release, running) = hold_thread(&pool);
        // The only thread is held until after the deadline has passed, so
        // the queued job cannot start in time, however loaded the machine.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let t0 = Instant::now();
        let late = pool.run(move || flag.store(true, Ordering::SeqCst)).await;
        assert_eq!(late, Err(PoolError::QueueTimeout(deadline)));
        assert!(t0.elapsed() >= deadline);
        release.send(()).unwrap();
        // A job running past the deadline is waited for, not refused.
        assert_eq!(running.await.unwrap(), Ok(()));
        // The refused job was skipped and its place freed.
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(pool.in_pool.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn runs_jobs_and_survives_panics() {
        let pool = Pool::new(1, 2, NO_DEADLINE);
        assert_eq!(pool.run(|| 2 + 2).await, Ok(4));
        let r = pool.run(|| -> u32 { panic!("boom") }).await;
        assert_eq!(r, Err(PoolError::Panicked("boom".into())));
        // the single thread is still alive
        assert_eq!(pool.run(|| "ok").await, Ok("ok"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_is_busy_immediately() {
        let pool = Pool::new(1, 1, NO_DEADLINE);
        let (release_tx, running) = hold_thread(&pool);
        // thread busy; one job fits in the queue, the next one does not
        let p = pool.clone();
        let queued = tokio::spawn(async move { p.run(|| 2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = std::time::Instant::now();
        assert_eq!(pool.run(|| 3).await, Err(PoolError::Busy));
        assert!(t0.elapsed() < Duration::from_secs(1));
        release_tx.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(()));
        assert_eq!(queued.await.unwrap(), Ok(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zero_queue_takes_one_job_per_idle_thread_at_once() {
        // Both threads are idle, so two jobs submitted back to back are
        // both taken (they need no queue), and only a third is refused.
        // Regression: the channel alone (rendezvous with one thread at a
        // time waiting on it) refused the second job.
        for _ in 0..20 {
            let pool = Pool::new(2, 0, NO_DEADLINE);
            let (release_tx, release_rx) = channel::<()>();
            let release_rx = Arc::new(Mutex::new(release_rx));
            let (started_tx, started_rx) = channel::<()>();
            let mut jobs = Vec::new();
            for _ in 0..2 {
                let (rx, started) = (Arc::clone(&release_rx), started_tx.clone());
                let job = pool.run(move || {
                    let _ = started.send(());
                    let _ = rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
                });
                // Submitted (first poll) before the other job starts.
                let mut job = Box::pin(job);
                assert!(futures::poll!(job.as_mut()).is_pending());
                jobs.push(job);
            }
            for _ in 0..2 {
                started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
            }
            assert_eq!(pool.run(|| ()).await, Err(PoolError::Busy));
            release_tx.send(()).unwrap();
            release_tx.send(()).unwrap();
            for job in jobs {
                assert_eq!(job.await, Ok(()));
            }
            // Finished jobs leave room at once.
            assert_eq!(pool.run(|| 5).await, Ok(5));
        }
    }
}
