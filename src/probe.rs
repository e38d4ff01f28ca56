//! `img-proxy probe URL`: exits 0 when `URL` answers 2xx, 1 otherwise.
//!
//! Container healthchecks run a command inside the image; the runtime
//! image has no curl or wget (and should not need them), so the binary
//! checks itself: `HEALTHCHECK CMD ["img-proxy", "probe",
//! "http://127.0.0.1:8080/ready"]`. Any address, http or https; redirects
//! are not followed (a redirect is not a healthy answer).

use std::process::ExitCode;

use crate::config::ProbeArgs;

/// Why a probe failed: printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: answered {1}")]
    Status(String, reqwest::StatusCode),
    #[error("{0}: {1}")]
    Request(String, String),
    #[error("cannot start: {0}")]
    Setup(String),
}

/// Runs the probe; the exit code is what a healthcheck reads.
pub fn run(args: &ProbeArgs) -> ExitCode {
    match probe(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("img-proxy probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe(args: &ProbeArgs) -> Result<(), ProbeError> {
    crate::worker::fetch::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::Setup(e.to_string()))?;
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| ProbeError::Setup(e.to_string()))?;
    let url = args.url.clone();
    let status = runtime
        .block_on(async { client.get(&url).send().await.map(|r| r.status()) })
        .map_err(|e| ProbeError::Request(url.clone(), error_chain(&e)))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(ProbeError::Status(url, status))
    }
}

/// reqwest's top-level message is vague ("error sending request"); the
/// causes say what happened (refused, timed out).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
