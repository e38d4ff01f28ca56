//! The default `MAX_CONNECTIONS`, from the process's descriptor limit.
//!
//! Client connections must never use up the descriptors that origin
//! fetches, gateway-to-worker calls, gossip, the AVIF child's pipes and
//! files need: when `accept` fails with `EMFILE`, every other part of the
//! node fails with it. So the default cap leaves a reserve of a quarter of
//! the limit, at least [`MIN_RESERVE`] (but never more than half).

/// Smallest reserve kept for everything that is not a client connection.
pub const MIN_RESERVE: u64 = 256;

/// Descriptors a node needs for itself whatever MAX_CONNECTIONS says:
/// standard streams, the runtime, the listener, gossip, a few origin
/// sockets. An explicit `MAX_CONNECTIONS` must leave at least this many.
pub const HARD_RESERVE: u64 = 64;

/// The soft `RLIMIT_NOFILE` of this process, if it can be read.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn descriptor_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// Elsewhere the limit is not read; the cap falls back to a fixed value.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn descriptor_limit() -> Option<u64> {
    None
}

/// Client connections allowed under a descriptor limit of `limit`.
pub fn connections_for_limit(limit: u64) -> usize {
    let reserve = (limit / 4).max(MIN_RESERVE).min(limit / 2);
    usize::try_from(limit - reserve)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// The default cap: from the limit, or 768 (what a 1,024 limit gives)
/// when the limit is unknown or unlimited.
pub fn default_max_connections() -> usize {
    connections_for_limit(descriptor_limit().unwrap_or(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_is_a_quarter_but_at_least_256_and_at_most_half() {
        assert_eq!(connections_for_limit(1024), 768);
        assert_eq!(connections_for_limit(65_536), 49_152);
        assert_eq!(connections_for_limit(512), 256);
        assert_eq!(connections_for_limit(300), 150);
        assert_eq!(connections_for_limit(1), 1);
    }

    #[test]
    fn this_process_has_a_readable_limit() {
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert!(descriptor_limit().is_some_and(|l| l >= 16));
        }
        assert!(default_max_connections() >= 1);
    }
}
