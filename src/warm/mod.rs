//! `img-proxy warm URLS.txt --gateway http://host:8080`: asks a gateway
//! for every URL of a list, so the cluster's caches are full before
//! traffic arrives.
//!
//! Each URL (with the same image options for all) is one
//! `GET /image`, signed like `img-proxy sign` does when a key is given,
//! `--concurrency` at a time. Progress goes to stderr ([`progress`]); the
//! closing summary ([`summary`]) to stdout and the failures, one per line,
//! to stderr; the exit code is 1 when any URL failed, 2 for a usage error.

mod list;
mod progress;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;

use crate::edge::sign_cli::parse_options;
use crate::edge::signature::signed_path;
use progress::Progress;
use summary::{Answer, Outcome, Tally};

/// Arguments of `img-proxy warm`.
#[derive(Debug, Args)]
pub struct WarmArgs {
    /// File of source URLs, one per line; blank lines and lines starting
    /// with `#` are skipped. `-` reads standard input.
    pub file: PathBuf,
    /// Image options for every URL, as in the query: `w=300 format=webp`.
    #[arg(value_name = "NAME=VALUE")]
    pub options: Vec<String>,
    /// The gateway (or load balancer) to ask, e.g. http://localhost:8080.
    #[arg(long, value_name = "URL")]
    pub gateway: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Sign requests with this key (with URL_SIGNING_KEYS, its first key).
    #[arg(long, env = "URL_SIGNING_KEYS", hide_env_values = true)]
    pub key: Option<String>,
    /// `Accept` header to send, e.g. `image/avif,image/webp` to warm the
    /// variants `format=auto` gives browsers.
    #[arg(long)]
    pub accept: Option<String>,
    /// Give up on one URL after this long (`30s`, `2m`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// What every request shares.
struct Plan {
    base: String,
    options: Vec<(String, String)>,
    key: Option<String>,
    accept: Option<String>,
    client: reqwest::Client,
}

/// Runs the command; the exit code says whether every URL was warmed.
pub fn run(args: &WarmArgs) -> ExitCode {
    match prepare(args) {
        Ok((plan, list)) => execute(args, plan, list),
        Err(e) => {
            eprintln!("img-proxy warm: {e}");
            ExitCode::from(2)
        }
    }
}

fn prepare(args: &WarmArgs) -> Result<(Plan, list::UrlList), String> {
    let gateway =
        url::Url::parse(&args.gateway).map_err(|e| format!("--gateway {}: {e}", args.gateway))?;
    if !matches!(gateway.scheme(), "http" | "https") || gateway.query().is_some() {
        return Err(format!(
            "--gateway {}: expected http(s)://host[:port][/prefix]",
            args.gateway
        ));
    }
    let options = parse_options(&args.options)?;
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
    } else {
        std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?
    };
    let key = args
        .key
        .as_deref()
        .and_then(|k| k.split(',').map(str::trim).find(|k| !k.is_empty()))
        .map(String::from);
    crate::worker::fetch::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(args.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let plan = Plan {
        base: gateway.as_str().trim_end_matches('/').to_string(),
        options,
        key,
        accept: args.accept.clone(),
        client,
    };
    Ok((plan, list::parse(&text)))
}

fn execute(args: &WarmArgs, plan: Plan, list: list::UrlList) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("img-proxy warm: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let progress = Progress::new(list.urls.len() as u64);
    let tally = Mutex::new(Tally::default());
    runtime.block_on(
        futures::stream::iter(list.urls.iter().map(|u| warm_one(&plan, u)))
            .buffer_unordered(usize::from(args.concurrency))
            .for_each(|outcome| {
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                t.add(outcome);
                progress.inc(t.failures.len());
                async {}
            }),
    );
    let tally = tally.into_inner().unwrap_or_else(|e| e.into_inner());
    progress.finish(tally.failures.len());
    print!("{}", tally.summary(started.elapsed(), list.duplicates));
    if tally.failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "img-proxy warm: {} of {} URLs failed:",
        tally.failures.len(),
        tally.done
    );
    for f in &tally.failures {
        eprintln!("  {f}");
    }
    ExitCode::FAILURE
}

/// The `/image` path for `url`, signed when there is a key.
fn image_path(plan: &Plan, url: &str) -> String {
    match &plan.key {
        Some(key) => signed_path(key.as_bytes(), url, &plan.options),
        None => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("url", url);
            for (k, v) in &plan.options {
                q.append_pair(k, v);
            }
            format!("/image?{}", q.finish())
        }
    }
}

async fn warm_one(plan: &Plan, url: &str) -> Outcome {
    let started = Instant::now();
    let answer = ask(plan, url).await;
    Outcome {
        url: url.to_string(),
        took: started.elapsed(),
        answer,
    }
}

/// One request; the body is counted as it streams, never held whole.
async fn ask(plan: &Plan, url: &str) -> Result<Answer, String> {
    let mut req = plan
        .client
        .get(format!("{}{}", plan.base, image_path(plan, url)));
    if let Some(accept) = &plan.accept {
        req = req.header(reqwest::header::ACCEPT, accept);
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| crate::error_chain::one_line(&e))?;
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut bytes = 0u64;
    let mut head = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| crate::error_chain::one_line(&e))?
    {
        bytes += chunk.len() as u64;
        if head.len() < 200 && !(200..300).contains(&status) {
            head.extend_from_slice(&chunk[..chunk.len().min(200 - head.len())]);
        }
    }
    let message = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    Ok(Answer {
        status,
        cache,
        bytes,
        message,
    })
}
