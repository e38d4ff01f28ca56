//! The set of URLs whose stale entries are being revalidated, so that
//! however many requests meet an expired entry, one revalidation runs
//! (see [`super::revalidate`]).

use std::collections::HashSet;
use std::sync::Mutex;

/// The URLs being revalidated now.
#[derive(Default)]
pub struct Revalidations {
    running: Mutex<HashSet<String>>,
}

impl Revalidations {
    /// Claims `url`; false if a revalidation of it is already running.
    pub fn start(&self, url: &str) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.insert(url.to_string())
    }

    /// Releases `url` (also if the revalidation's task panics: call it
    /// through a [`Release`] guard).
    pub fn finish(&self, url: &str) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(url);
    }
}

/// Releases a claimed URL when dropped.
pub struct Release<'a> {
    pub set: &'a Revalidations,
    pub url: &'a str,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.set.finish(self.url);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_revalidation_per_url_at_a_time() {
        let r = Revalidations::default();
        assert!(r.start("http://a/x"));
        assert!(!r.start("http://a/x"));
        assert!(r.start("http://a/y"));
        r.finish("http://a/x");
        assert!(r.start("http://a/x"));
    }
}
