//! What `img-proxy warm` prints at the end: counts by status, cache hits
//! and misses (`X-Cache`), bytes, the slowest URLs, and the failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How many of the slowest URLs are listed.
const SLOWEST: usize = 5;

/// The gateway's answer to one URL.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// `X-Cache`: `HIT`, `MISS`, or absent.
    pub cache: Option<String>,
    pub bytes: u64,
    /// The first line of an error answer's body.
    pub message: String,
}

/// One URL's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub url: String,
    pub took: Duration,
    /// The answer, or why there was none (refused, timed out...).
    pub answer: Result<Answer, String>,
}

impl Outcome {
    /// A 2xx answer warmed the cache; anything else failed.
    pub fn failed(&self) -> bool {
        !matches!(&self.answer, Ok(a) if (200..300).contains(&a.status))
    }
}

/// Everything counted so far.
#[derive(Debug, Default)]
pub struct Tally {
    pub by_status: BTreeMap<String, usize>,
    pub hits: usize,
    pub misses: usize,
    pub bytes: u64,
    pub slowest: Vec<(Duration, String)>,
    pub failures: Vec<String>,
    pub done: usize,
}

impl Tally {
    pub fn add(&mut self, o: Outcome) {
        self.done += 1;
        let failed = o.failed();
        match &o.answer {
            Ok(a) => {
                *self.by_status.entry(a.status.to_string()).or_default() += 1;
                self.bytes += a.bytes;
                match a.cache.as_deref() {
                    Some("HIT") if !failed => self.hits += 1,
                    Some("MISS") if !failed => self.misses += 1,
                    _ => {}
                }
                if failed {
                    self.failures
                        .push(format!("{}: {} {}", o.url, a.status, a.message));
                }
            }
            Err(e) => {
                *self.by_status.entry("error".to_string()).or_default() += 1;
                self.failures.push(format!("{}: {e}", o.url));
            }
        }
        self.slowest.push((o.took, o.url));
        self.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        self.slowest.truncate(SLOWEST);
    }

    /// The closing summary (without the failures, which go to stderr).
    pub fn summary(&self, elapsed: Duration, duplicates: usize) -> String {
        let secs = elapsed.as_secs_f64();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "warmed {} URLs in {secs:.1} s ({:.1}/s)",
            self.done,
            self.done as f64 / secs.max(1e-3)
        );
        if duplicates > 0 {
            let _ = writeln!(out, "skipped {duplicates} duplicate lines");
        }
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(out, "status: {}", statuses.join(", "));
        let _ = writeln!(out, "cache: {} hits, {} misses", self.hits, self.misses);
        let _ = writeln!(out, "bytes: {} ({})", self.bytes, human_bytes(self.bytes));
        if !self.slowest.is_empty() {
            let _ = writeln!(out, "slowest:");
            for (took, url) in &self.slowest {
                let _ = writeln!(out, "  {:>8.3} s  {url}", took.as_secs_f64());
            }
        }
        out
    }
}

/// `1.5 MiB`.
fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < units.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(url: &str, status: u16, cache: &str, ms: u64) -> Outcome {
        Outcome {
            url: url.into(),
            took: Duration::from_millis(ms),
            answer: Ok(Answer {
                status,
                cache: Some(cache.into()),
                bytes: 10,
                message: String::new(),
            }),
        }
    }

    #[test]
    fn counts_statuses_cache_and_failures() {
        let mut t = Tally::default();
        t.add(ok("a", 200, "HIT", 5));
        t.add(ok("b", 200, "MISS", 50));
        t.add(ok("c", 404, "MISS", 7));
        t.add(Outcome {
            url: "d".into(),
            took: Duration::from_millis(1),
            answer: Err("connection refused".into()),
        });
        assert_eq!((t.hits, t.misses, t.bytes), (1, 1, 30));
        assert_eq!(t.failures, vec!["c: 404 ", "d: connection refused"]);
        let s = t.summary(Duration::from_secs(2), 1);
        assert!(s.contains("warmed 4 URLs in 2.0 s (2.0/s)"), "{s}");
        assert!(s.contains("status: 200: 2, 404: 1, error: 1"), "{s}");
        assert!(s.contains("skipped 1 duplicate lines"), "{s}");
        assert!(s.contains("bytes: 30 (30 B)"), "{s}");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert!(s.find("  b").unwrap() < s.find("  c").unwrap(), "{s}");
    }
}
