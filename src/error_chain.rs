//! One line for an error and every cause under it.
//!
//! reqwest's and hyper's top-level messages ("error sending request") say
//! nothing an operator can act on; the cause ("connection refused",
//! "deadline has elapsed") is further down the source chain.

use std::error::Error as StdError;

/// Renders an error and its sources on one line, skipping repeats (hyper
/// and reqwest often wrap the same message), so logs show the root cause.
pub fn one_line(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let msg = e.to_string().replace(['\n', '\r'], " ");
        if !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("error sending request")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn names_every_cause_once() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        ));
        assert_eq!(
            one_line(&e),
            "error sending request: Connection refused (os error 111)"
        );
    }
}
