//! The keys of the disk tier's entries, for the `cache_disk_entries` gauge:
//! foyer keeps its index by hash and exposes no count.
//!
//! Keys are added when written and removed when deleted; at scrape time
//! the ones foyer no longer holds (its FIFO eviction drops whole blocks
//! without telling us) are dropped, so the gauge follows evictions. A key
//! written in the last [`WRITE_GRACE`] is kept meanwhile: foyer indexes a
//! write only once its buffer is flushed. The
//! list is saved in `CACHE_DIR` on a graceful stop (one file, about the
//! keys' length: ~100 bytes per entry) and read back at start, again
//! keeping only the keys the recovered index holds. After a crash the
//! saved list is the one of the last graceful stop: entries written since
//! are on disk and served, but missing from the count, which is therefore
//! a lower bound until they are rewritten.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a written key counts before the index must confirm it.
const WRITE_GRACE: Duration = Duration::from_secs(10);

/// The file the list is saved in.
pub const KEYS_FILE: &str = ".img-proxy-keys";
/// Separates keys in the file: never in a key (URLs percent-encode it).
const SEPARATOR: char = '\0';

/// The keys written to disk.
#[derive(Default)]
pub struct KeyList {
    /// Each key with when it was written (loaded ones: when loaded).
    keys: Mutex<HashMap<String, Instant>>,
}

impl KeyList {
    /// The list saved in `dir`, if any, keeping the keys `held` says are
    /// still on disk.
    pub fn load(dir: &Path, held: impl Fn(&str) -> bool) -> KeyList {
        let text = std::fs::read(dir.join(KEYS_FILE)).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let long_ago = Instant::now().checked_sub(WRITE_GRACE);
        let keys = text
            .split(SEPARATOR)
            .filter(|k| !k.is_empty() && held(k))
            .map(|k| (k.to_string(), long_ago.unwrap_or_else(Instant::now)))
            .collect();
        KeyList {
            keys: Mutex::new(keys),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, key: &str) {
        self.lock().insert(key.to_string(), Instant::now());
    }

    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the keys `held` says are still on disk, and those written
    /// too recently to be indexed yet; returns how many.
    pub fn retain(&self, held: impl Fn(&str) -> bool) -> usize {
        let mut keys = self.lock();
        keys.retain(|k, written| written.elapsed() < WRITE_GRACE || held(k));
        keys.len()
    }

    /// Writes the list to `dir` (through a temporary file and a rename, so
    /// a crash while saving leaves the previous list).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let text: Vec<u8> = {
            let keys = self.lock();
            let mut out = String::new();
            for k in keys.keys() {
                out.push_str(k);
                out.push(SEPARATOR);
            }
            out.into_bytes()
        };
        let tmp = dir.join(format!("{KEYS_FILE}.tmp"));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, dir.join(KEYS_FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_keys_come_back_if_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let list = KeyList::default();
        list.insert("https://a/x.png");
        list.insert("https://a/x.png\nw=8");
        list.insert("https://a/y.png");
        list.remove("https://a/y.png");
        list.save(dir.path()).unwrap();
        let back = KeyList::load(dir.path(), |k| k != "https://a/x.png");
        assert_eq!(back.len(), 1);
        back.insert("https://a/new.png");
        // Just written: counted until the index could have it.
        assert_eq!(back.retain(|_| false), 1);
        assert!(KeyList::load(&dir.path().join("none"), |_| true).is_empty());
    }
}
