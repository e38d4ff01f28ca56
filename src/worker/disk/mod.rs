//! The disk tier: originals and variants kept under `CACHE_DIR`, within
//! `CACHE_DISK_BYTES`, so that a restarted worker (SIGTERM or SIGKILL)
//! still holds its share of the cache.
//!
//! The storage is foyer's block engine (the disk half of its hybrid
//! cache): fixed-size block files, appended to and evicted a block at a
//! time (FIFO), with an index rebuilt from the blocks' own indexes at
//! start-up. We use only its disk half: moka stays the memory tier in
//! front (foyer's own memory part is kept tiny and every entry goes
//! straight to disk).
//!
//! What this module adds:
//! - every record carries its own checksum and format version
//!   ([`record`]); a record that fails them, or that foyer's checksum
//!   refuses, is a miss, logged and counted in `disk_corrupt`, and removed;
//! - every read has a deadline, so a hung disk costs a miss, not a hang;
//! - the whole budget is reserved (`fallocate`) when the tier opens, so a
//!   file system that other writers fill later cannot make our writes fail:
//!   measured with foyer 0.22.6 on a 6 MiB tmpfs under a 64 MiB budget, a
//!   write that hits ENOSPC panics inside foyer's block manager and poisons
//!   its locks, after which every foyer call panics. Not enough room for
//!   the reservation is a start-up error naming `CACHE_DIR`;
//! - every call into foyer runs under `catch_unwind`: if the disk fails
//!   anyway (I/O errors) and foyer panics, the tier switches itself off for
//!   good, with a warning and the `disk_degraded` gauge at 1, and the worker
//!   keeps serving from memory and origins;
//! - a failed write probe (a 4 KiB reserved file rewritten and synced
//!   every [`PROBE_INTERVAL`] while writing: it fails on I/O errors or a
//!   read-only remount, not on a full file system, which cannot touch
//!   reserved space) turns writes off, with a warning and the same gauge,
//!   until a later probe succeeds.

pub mod keys;
pub mod record;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use foyer::{
    BlockEngineConfig, Code, DeviceBuilder, ErrorKind, FsDeviceBuilder, HybridCache,
    HybridCacheBuilder, HybridCachePolicy, Load, RecoverMode,
};
use futures::FutureExt;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::metrics::DiskMetrics;

pub use record::{DiskRecord, RecordError};

/// A disk read slower than this is abandoned and counted as an error.
const READ_DEADLINE: Duration = Duration::from_secs(2);
/// How often the disk's health is re-checked while writing.
const PROBE_INTERVAL: Duration = Duration::from_secs(10);
/// Largest block file; smaller budgets get smaller blocks (at least 8 of
/// them), since foyer evicts a whole block at a time.
const MAX_BLOCK: u64 = 16 << 20;
/// Smallest budget accepted: a few blocks of the smallest useful size.
pub const MIN_DISK_BYTES: u64 = 4 << 20;
/// foyer's own memory part, kept small: moka is the memory tier.
const FOYER_MEMORY: usize = 1 << 20;
/// Name of the file rewritten to check that the disk takes writes; kept
/// (4 KiB, the only bytes beyond the budget).
const PROBE_FILE: &str = ".img-proxy-probe";
/// Lock file held by the worker using the directory.
const LOCK_FILE: &str = ".img-proxy-lock";
/// Its length: one page.
const PROBE_LEN: usize = 4096;

/// Why the disk tier cannot start. Each message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("CACHE_DIR {dir}: {cause}")]
    Unusable { dir: PathBuf, cause: String },
    #[error("CACHE_DISK_BYTES must be at least {MIN_DISK_BYTES} bytes (4MiB)")]
    TooSmall,
}

/// The records as foyer stores them; all checking is in [`DiskRecord`].
impl Code for DiskRecord {
    fn encode(&self, writer: &mut impl std::io::Write) -> foyer::Result<()> {
        writer
            .write_all(&DiskRecord::encode(self))
            .map_err(foyer::Error::io_error)
    }

    fn decode(reader: &mut impl std::io::Read) -> foyer::Result<Self> {
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(foyer::Error::io_error)?;
        DiskRecord::decode(&buf).map_err(|e| foyer::Error::new(ErrorKind::Parse, e.to_string()))
    }

    fn estimated_size(&self) -> usize {
        self.encoded_len()
    }
}

/// The disk tier of one worker.
pub struct DiskTier {
    cache: HybridCache<String, DiskRecord>,
    dir: PathBuf,
    block_size: u64,
    metrics: DiskMetrics,
    degraded: AtomicBool,
    /// Set for good once foyer panicked: its state is poisoned.
    failed: AtomicBool,
    /// Held while the process lives (the OS drops it even on SIGKILL).
    _lock: std::fs::File,
    last_probe: Mutex<Instant>,
    /// The keys stored, for the entries gauge (foyer counts none).
    keys: keys::KeyList,
}

impl DiskTier {
    /// Opens (or creates) the cache files in `dir`, recovering what an
    /// earlier run left there. `dir` must exist and take writes.
    pub async fn open(
        dir: &Path,
        budget: u64,
        metrics: DiskMetrics,
    ) -> Result<Arc<DiskTier>, DiskError> {
        if budget < MIN_DISK_BYTES {
            return Err(DiskError::TooSmall);
        }
        check_dir(dir)?;
        let unusable = |cause: String| DiskError::Unusable {
            dir: dir.to_path_buf(),
            cause,
        };
        let lock = lock_dir(dir).map_err(unusable)?;
        let block_size = block_size_for(budget);
        let device = FsDeviceBuilder::new(dir)
            .with_capacity(usize::try_from(budget).unwrap_or(usize::MAX))
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        let started = Instant::now();
        let cache = HybridCacheBuilder::new()
            .with_name("img-proxy-disk")
            .with_policy(HybridCachePolicy::WriteOnInsertion)
            .memory(FOYER_MEMORY)
            .with_weighter(|k: &String, v: &DiskRecord| k.len() + v.encoded_len())
            .storage()
            .with_engine_config(
                BlockEngineConfig::new(device)
                    .with_block_size(block_size as usize)
                    .with_buffer_pool_size((2 * block_size) as usize),
            )
            .with_recover_mode(RecoverMode::Quiet)
            .build()
            .await
            .map_err(|e| unusable(format!("cannot open the disk cache: {e}")))?;
        reserve(dir).map_err(|e| {
            unusable(format!(
                "cannot reserve CACHE_DISK_BYTES ({budget} bytes) there: {e}"
            ))
        })?;
        let keys = keys::KeyList::load(dir, |k| cache.storage().may_contains(k));
        info!(dir = %dir.display(), budget, block_size, entries = keys.len(), elapsed_ms = started.elapsed().as_millis() as u64, "disk cache opened");
        Ok(Arc::new(DiskTier {
            cache,
            dir: dir.to_path_buf(),
            block_size,
            metrics,
            degraded: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            keys,
            _lock: lock,
            last_probe: Mutex::new(Instant::now()),
        }))
    }

    /// The record stored under `key`, if it is there and intact. Damaged
    /// records are counted, logged and removed; errors and slow reads are
    /// counted and logged; all of them are misses.
    pub async fn get(&self, key: &str) -> Option<DiskRecord> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        let storage = self.cache.storage();
        let present = self.guard(|| storage.may_contains(key)).unwrap_or(false);
        if !present {
            self.metrics.misses.inc();
            return None;
        }
        let load = AssertUnwindSafe(storage.load(key)).catch_unwind();
        let loaded = match tokio::time::timeout(READ_DEADLINE, load).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_panic)) => {
                self.fail();
                return None;
            }
            Err(elapsed) => Err(elapsed),
        };
        let found = match loaded {
            Ok(Ok(Load::Entry { value, .. })) => Some(value),
            Ok(Ok(Load::Piece { piece, .. })) => Some(piece.value().clone()),
            Ok(Ok(Load::Throttled)) => None,
            // The index had it but the read did not: foyer's own checksum
            // (or its header check) refused the bytes.
            Ok(Ok(Load::Miss)) => {
                self.corrupt(key, "the disk cache's entry checksum failed");
                None
            }
            Ok(Err(e)) if e.kind() == ErrorKind::Parse => {
                self.corrupt(key, e.message());
                None
            }
            Ok(Err(e)) => {
                self.metrics.errors.inc();
                warn!(key, error = %e, "disk cache read failed; treating it as a miss");
                None
            }
            Err(_) => {
                self.metrics.errors.inc();
                warn!(key, "disk cache read timed out; treating it as a miss");
                None
            }
        };
        // Hits are counted by the caller, which may still refuse the
        // record (expired, purged).
        if found.is_none() {
            self.metrics.misses.inc();
        }
        found
    }

    fn corrupt(&self, key: &str, why: &str) {
        self.metrics.corrupt.inc();
        warn!(
            key,
            reason = why,
            "damaged disk cache entry dropped; it will be fetched again"
        );
        self.guard(|| self.cache.storage().delete(key));
        self.keys.remove(key);
    }

    /// Runs a foyer call, switching the tier off if it panics.
    fn guard<T>(&self, call: impl FnOnce() -> T) -> Option<T> {
        match std::panic::catch_unwind(AssertUnwindSafe(call)) {
            Ok(v) => Some(v),
            Err(_) => {
                self.fail();
                None
            }
        }
    }

    /// Switches the tier off for good after foyer panicked.
    fn fail(&self) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            self.metrics.errors.inc();
            self.metrics.degraded.set(1);
            warn!(dir = %self.dir.display(), "disk cache failed and is switched off until restart; serving from memory and origins");
        }
    }

    /// Stores `record` under `key` in the background, unless the disk is
    /// degraded or the record does not fit in a block.
    pub async fn put(&self, key: String, record: DiskRecord) {
        self.check_health().await;
        if self.degraded.load(Ordering::Relaxed) || self.failed.load(Ordering::Relaxed) {
            return;
        }
        // An entry must fit one block with its index page.
        if (record.encoded_len() + key.len()) as u64 + 8192 > self.block_size {
            return;
        }
        self.metrics.writes.inc();
        self.keys.insert(&key);
        self.guard(|| self.cache.storage_writer(key).force().insert(record));
    }

    /// Whether the disk index has `key` (it may still fail its checks).
    pub fn contains(&self, key: &str) -> bool {
        !self.failed.load(Ordering::Relaxed)
            && self
                .guard(|| self.cache.storage().may_contains(key))
                .unwrap_or(false)
    }

    /// Removes `key` from disk (purge, replaced images).
    pub fn remove(&self, key: &str) {
        if !self.failed.load(Ordering::Relaxed) {
            self.guard(|| self.cache.remove(key));
        }
        self.keys.remove(key);
    }

    /// Entries on disk: the keys written (this run, and before the last
    /// graceful stop) that the disk index still holds, so entries foyer
    /// evicted are not counted. After a crash, entries written since the
    /// last graceful stop are missing from the count (see [`keys`]).
    pub fn entries(&self) -> usize {
        if self.failed.load(Ordering::Relaxed) {
            return 0;
        }
        let storage = self.cache.storage();
        self.keys
            .retain(|k| self.guard(|| storage.may_contains(k)).unwrap_or(false))
    }

    /// Re-checks the disk at most every [`PROBE_INTERVAL`]: a write probe
    /// and the free space. Flips the degraded state, with one log line each
    /// way.
    async fn check_health(&self) {
        let mut last = self.last_probe.lock().await;
        if last.elapsed() < PROBE_INTERVAL {
            return;
        }
        *last = Instant::now();
        let dir = self.dir.clone();
        let verdict = tokio::task::spawn_blocking(move || rewrite_probe(&dir))
            .await
            .unwrap_or_else(|e| Err(format!("health check task failed: {e}")));
        let was = self.degraded.swap(verdict.is_err(), Ordering::Relaxed);
        self.metrics.degraded.set(i64::from(verdict.is_err()));
        match (was, verdict) {
            (false, Err(why)) => {
                self.metrics.errors.inc();
                warn!(dir = %self.dir.display(), reason = %why, "disk cache degraded: writes are off, serving from memory and origins");
            }
            (true, Ok(())) => {
                info!(dir = %self.dir.display(), "disk cache healthy again: writes are back on")
            }
            _ => {}
        }
    }

    /// Bytes the cache files occupy on disk (allocated blocks, not their
    /// apparent length), for the `disk_size` gauge.
    pub fn bytes_on_disk(&self) -> u64 {
        allocated_bytes(&self.dir)
    }

    /// [`DiskTier::close`], giving up after `deadline` (a hung disk must not
    /// hold the process past its stop grace period).
    pub async fn close_within(&self, deadline: Duration) {
        if tokio::time::timeout(deadline, self.close()).await.is_err() {
            warn!("closing the disk cache took too long; its last writes are lost");
        }
    }

    /// Finishes pending writes and closes the files (graceful shutdown),
    /// keeping the key list for the next start.
    pub async fn close(&self) {
        if self.failed.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.keys.save(&self.dir) {
            warn!(error = %e, "cannot save the disk cache's key list; its entries gauge will read low after the restart");
        }
        match AssertUnwindSafe(self.cache.close()).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "closing the disk cache failed"),
            Err(_) => self.fail(),
        }
    }
}

/// Checks that `dir` is an existing directory that takes writes: done at
/// start-up (configuration) and again when the tier opens.
pub fn check_dir(dir: &Path) -> Result<(), DiskError> {
    let unusable = |cause: String| DiskError::Unusable {
        dir: dir.to_path_buf(),
        cause,
    };
    if !dir.is_dir() {
        return Err(unusable("no such directory".into()));
    }
    probe_write(dir).map_err(|e| unusable(format!("cannot write there: {e}")))
}

/// Blocks of at most [`MAX_BLOCK`], at least eight per budget, page-aligned.
fn block_size_for(budget: u64) -> u64 {
    (budget / 8).clamp(512 << 10, MAX_BLOCK) & !4095
}

/// Takes the directory's lock file: two workers writing one set of block
/// files would destroy each other's entries.
fn lock_dir(dir: &Path) -> Result<std::fs::File, String> {
    use fs4::fs_std::FileExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| format!("cannot create the lock file: {e}"))?;
    match file.try_lock_exclusive() {
        Ok(true) => Ok(file),
        Ok(false) => {
            Err("in use by another img-proxy process (each worker needs its own CACHE_DIR)".into())
        }
        Err(e) => Err(format!("cannot lock it: {e}")),
    }
}

/// Allocates every cache file's full length on disk, so that later writes
/// into them cannot run out of space.
fn reserve(dir: &Path) -> std::io::Result<()> {
    use fs4::fs_std::FileExt;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_file() || path.ends_with(LOCK_FILE) || path.ends_with(keys::KEYS_FILE) {
            continue;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        file.allocate(len)?;
    }
    Ok(())
}

/// Writes and syncs the probe file in `dir`, reserving its space.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    use fs4::fs_std::FileExt;
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(PROBE_FILE))?;
    f.allocate(PROBE_LEN as u64)?;
    f.write_all(&[0x5a; PROBE_LEN])?;
    f.sync_all()
}

/// Rewrites the reserved probe file in place and syncs it.
fn rewrite_probe(dir: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(PROBE_FILE))
        .map_err(|e| format!("write probe failed: {e}"))?;
    f.write_all(&[0x5a; PROBE_LEN])
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("write probe failed: {e}"))
}

/// Allocated bytes of the regular files directly in `dir`.
fn allocated_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                m.blocks() * 512
            }
            #[cfg(not(unix))]
            {
                m.len()
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn record(seed: u8) -> DiskRecord {
        let mut body = b"\x89PNG\r\n\x1a\n".to_vec();
        body.extend((0..5000u32).map(|i| (i as u8).wrapping_mul(seed)));
        let now = SystemTime::now();
        DiskRecord {
            body: body.into(),
            stored_at: now,
            fresh_until: now + Duration::from_secs(60),
            origin_etag: None,
            origin_last_modified: None,
        }
    }

    async fn reopen(dir: &Path, metrics: &DiskMetrics) -> Arc<DiskTier> {
        DiskTier::open(dir, 16 << 20, metrics.clone())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn entries_survive_closing_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = DiskMetrics::default();
        let disk = reopen(dir.path(), &metrics).await;
        disk.put("a".into(), record(3)).await;
        disk.put("b".into(), record(5)).await;
        assert_eq!(disk.entries(), 2);
        disk.close().await;
        drop(disk);
        let disk = reopen(dir.path(), &metrics).await;
        assert_eq!(disk.entries(), 2, "the count survives a graceful stop");
        disk.remove("b");
        assert_eq!(disk.entries(), 1);
        let a = disk.get("a").await.expect("a recovered");
        assert_eq!(a.body, record(3).body);
        assert!(a.fresh_until > a.stored_at + Duration::from_secs(59));
        assert!(disk.get("b").await.is_none());
        assert!(disk.get("c").await.is_none());
        assert_eq!(metrics.corrupt.get(), 0);
    }

    #[tokio::test]
    async fn a_flipped_byte_on_disk_is_a_counted_miss() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = DiskMetrics::default();
        let disk = reopen(dir.path(), &metrics).await;
        let r = record(7);
        disk.put("a".into(), r.clone()).await;
        disk.close().await;
        drop(disk);
        let needle = &r.body[1000..1100];
        let mut flipped = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let mut data = std::fs::read(&path).unwrap();
            if let Some(pos) = data.windows(needle.len()).position(|w| w == needle) {
                data[pos + 50] ^= 1;
                std::fs::write(&path, data).unwrap();
                flipped += 1;
            }
        }
        assert_eq!(flipped, 1);
        let disk = reopen(dir.path(), &metrics).await;
        assert!(disk.get("a").await.is_none());
        assert_eq!(metrics.corrupt.get(), 1);
        // Dropped: the next read is a plain miss.
        assert!(disk.get("a").await.is_none());
        assert_eq!(metrics.corrupt.get(), 1);
    }

    #[tokio::test]
    async fn a_directory_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = reopen(dir.path(), &DiskMetrics::default()).await;
        let second = DiskTier::open(dir.path(), 16 << 20, DiskMetrics::default()).await;
        assert!(
            matches!(second, Err(DiskError::Unusable { cause, .. }) if cause.contains("in use"))
        );
        drop(first);
    }

    #[tokio::test]
    async fn the_files_stay_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = DiskMetrics::default();
        let disk = reopen(dir.path(), &metrics).await;
        // About 20 MB of records into a 16 MiB budget.
        for i in 0..4000u32 {
            disk.put(format!("k{i}"), record((i % 250) as u8 + 1)).await;
        }
        disk.close().await;
        // The budget (16 MiB) plus the 4 KiB probe file, allocated up front,
        // and the key list (its keys, a byte each more, in 4 KiB pages).
        let keys = std::fs::metadata(dir.path().join(keys::KEYS_FILE))
            .unwrap()
            .len();
        assert!(keys <= 4000 * 7, "{keys}");
        assert!(
            disk.bytes_on_disk() <= (16 << 20) + 4096 + 4096 + keys.next_multiple_of(4096),
            "{}",
            disk.bytes_on_disk()
        );
    }

    #[tokio::test]
    async fn a_missing_or_small_budget_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = DiskTier::open(&dir.path().join("x"), 16 << 20, DiskMetrics::default()).await;
        assert!(matches!(err, Err(DiskError::Unusable { .. })));
        let err = DiskTier::open(dir.path(), 1 << 20, DiskMetrics::default()).await;
        assert!(matches!(err, Err(DiskError::TooSmall)));
    }
}
