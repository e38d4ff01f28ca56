//! `img-proxy sign`: prints a signed `/image` path, so users can check
//! their own signing code against the server's.

use clap::Args;

use super::signature::{signed_path, SIG_PARAM};

/// Arguments of `img-proxy sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// A signing key (one of URL_SIGNING_KEYS).
    #[arg(long, env = "URL_SIGNING_KEY", hide_env_values = true)]
    pub key: String,
    /// The source image URL.
    pub url: String,
    /// Options as they appear in the query, e.g. `w=300 format=webp`.
    #[arg(value_name = "NAME=VALUE")]
    pub options: Vec<String>,
}

/// The signed path for `args`, or why it cannot be made.
pub fn run(args: &SignArgs) -> Result<String, String> {
    if args.key.is_empty() {
        return Err("--key is empty".into());
    }
    let options = parse_options(&args.options)?;
    Ok(signed_path(args.key.as_bytes(), &args.url, &options))
}

/// `NAME=VALUE` items (image options as they appear in the query), as
/// pairs; `url` and `sig` are not options. Shared with `img-proxy warm`.
pub fn parse_options(items: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut options = Vec::with_capacity(items.len());
    for item in items {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not NAME=VALUE"))?;
        if k.is_empty() || k == "url" || k == SIG_PARAM {
            return Err(format!(
                "{item:?}: option name must not be empty, url or sig"
            ));
        }
        options.push((k.to_string(), v.to_string()));
    }
    Ok(options)
}
