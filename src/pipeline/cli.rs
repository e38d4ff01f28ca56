//! `img-proxy transform`: the pipeline on local files.
//!
//! For operators (check what the proxy would serve for an image without a
//! cluster) and for benchmarking the exact code the workers run: options go
//! through the same parser as query strings, then [`transform`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context};

use super::options::{RequestedOptions, TransformOptions};
use super::transform::{transform, Limits};

/// Arguments of `transform`. Options mirror the query parameters.
#[derive(clap::Args, Debug, Clone)]
pub struct TransformArgs {
    /// Input image files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input) or directory (several inputs; created if
    /// missing; results keep the input's stem with the output format's
    /// extension).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Target width in pixels (1..=8192).
    #[arg(long, short = 'W')]
    pub width: Option<u32>,
    /// Target height in pixels (1..=8192).
    #[arg(long, short = 'H')]
    pub height: Option<u32>,
    /// How to fit into width x height.
    #[arg(long, value_parser = ["inside", "cover", "contain", "fill"])]
    pub fit: Option<String>,
    /// Output format (default: for one input, the output file's extension
    /// if it is .jpg/.jpeg/.png/.webp/.avif, else the source's format; GIF
    /// becomes PNG).
    #[arg(long, value_parser = ["jpeg", "jpg", "png", "webp", "avif"])]
    pub format: Option<String>,
    /// Encoder quality (1..=100, default 80).
    #[arg(long, short = 'q')]
    pub quality: Option<u8>,
    /// Gaussian blur, sigma in output pixels (0.3..=100).
    #[arg(long)]
    pub blur: Option<String>,
    /// Sharpen after downscaling, sigma in output pixels (0.3..=10).
    #[arg(long)]
    pub sharpen: Option<String>,
    /// What a `cover` crop keeps: center, north, south, east, west,
    /// north-east, north-west, south-east, south-west, smart, or fp:X:Y.
    #[arg(long)]
    pub gravity: Option<String>,
}

impl TransformArgs {
    /// Builds options through the query-string parser, so the CLI accepts
    /// and refuses exactly what the HTTP API does.
    pub fn options(&self) -> anyhow::Result<TransformOptions> {
        let w = self.width.map(|v| v.to_string());
        let h = self.height.map(|v| v.to_string());
        let q = self.quality.map(|v| v.to_string());
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(w) = &w {
            pairs.push(("w", w));
        }
        if let Some(h) = &h {
            pairs.push(("h", h));
        }
        if let Some(q) = &q {
            pairs.push(("q", q));
        }
        if let Some(f) = &self.fit {
            pairs.push(("fit", f));
        }
        if let Some(f) = &self.format {
            pairs.push(("format", f));
        }
        if let Some(b) = &self.blur {
            pairs.push(("blur", b));
        }
        if let Some(s) = &self.sharpen {
            pairs.push(("sharpen", s));
        }
        if let Some(g) = &self.gravity {
            pairs.push(("gravity", g));
        }
        let req = RequestedOptions::from_query(pairs)?;
        Ok(req.resolve(None).options)
    }
}

/// Runs the command. One input: `output` is the result file. Several:
/// `output` is a directory and inputs are processed in parallel on every
/// core. Every failure is reported on stderr; the result is an error if
/// any input failed.
pub fn run(args: TransformArgs) -> anyhow::Result<()> {
    let opts = args.options()?;
    let limits = Limits::default();
    if let [input] = args.inputs.as_slice() {
        // `-o out/` names a directory even before it exists.
        if args.output.is_dir() || names_a_directory(&args.output) {
            std::fs::create_dir_all(&args.output)
                .with_context(|| format!("creating output directory {}", args.output.display()))?;
            let out = output_path(&args.output, input, &opts)?;
            return transform_file(input, &out, &opts, &limits);
        }
        let opts = match format_from_extension(&args)? {
            Some(f) => TransformArgs {
                format: Some(f.to_string()),
                ..args.clone()
            }
            .options()?,
            None => opts,
        };
        return transform_file(input, &args.output, &opts, &limits);
    }
    // Plan every output first: two inputs with one stem (`a.png`, `a.jpg`)
    // would otherwise silently overwrite each other's result.
    let planned: Vec<Result<PathBuf, String>> = args
        .inputs
        .iter()
        .map(|input| output_path(&args.output, input, &opts).map_err(|e| format!("{e:#}")))
        .collect();
    let mut taken: HashMap<&Path, &Path> = HashMap::new();
    for (input, out) in args.inputs.iter().zip(&planned) {
        if let Ok(out) = out {
            if let Some(first) = taken.insert(out, input) {
                bail!(
                    "{} and {} would both be written to {}; rename one or transform them separately",
                    first.display(),
                    input.display(),
                    out.display()
                );
            }
        }
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating output directory {}", args.output.display()))?;
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<String>::new());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(args.inputs.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(input) = args.inputs.get(i) else {
                    return;
                };
                let r = match &planned[i] {
                    Ok(out) => transform_file(input, out, &opts, &limits),
                    Err(msg) => Err(anyhow!("{msg}")),
                };
                if let Err(e) = r {
                    let msg = format!("{e:#}");
                    eprintln!("error: {msg}");
                    if let Ok(mut f) = failures.lock() {
                        f.push(msg);
                    }
                }
            });
        }
    });
    let failed = failures.lock().map_or(0, |f| f.len());
    if failed > 0 {
        bail!("{failed} of {} inputs failed", args.inputs.len());
    }
    Ok(())
}

/// The format a single output file's name asks for (`-o thumb.webp`), when
/// `--format` does not say: writing source-format bytes under a `.png`
/// name would surprise anyone. An image format we cannot write (`.gif`,
/// `.bmp`, ...) is an error for the same reason; other or missing
/// extensions keep the source's format.
fn format_from_extension(args: &TransformArgs) -> anyhow::Result<Option<&'static str>> {
    const WRITABLE: [&str; 5] = ["jpeg", "jpg", "png", "webp", "avif"];
    const NOT_WRITABLE: [&str; 10] = [
        "gif", "bmp", "tif", "tiff", "heic", "heif", "jxl", "svg", "ico", "jp2",
    ];
    if args.format.is_some() {
        return Ok(None);
    }
    let Some(ext) = args.output.extension().and_then(|e| e.to_str()) else {
        return Ok(None);
    };
    let ext = ext.to_ascii_lowercase();
    if NOT_WRITABLE.contains(&ext.as_str()) {
        bail!(
            "{}: cannot write .{ext} images; name the output .jpg, .png, .webp or .avif, or pass --format",
            args.output.display()
        );
    }
    Ok(WRITABLE.into_iter().find(|f| *f == ext))
}

/// Whether `path` is spelled as a directory (ends with a separator).
fn names_a_directory(path: &Path) -> bool {
    path.as_os_str()
        .to_string_lossy()
        .chars()
        .next_back()
        .is_some_and(std::path::is_separator)
}

/// `dir/<stem>.<ext>`, where the extension is that of the format the
/// transform will produce (sniffed from the input's first bytes).
fn output_path(dir: &Path, input: &Path, opts: &TransformOptions) -> anyhow::Result<PathBuf> {
    let stem = input
        .file_stem()
        .ok_or_else(|| anyhow!("{}: input has no file name", input.display()))?;
    let format = match opts.format {
        Some(f) => f,
        None => {
            let mut head = [0u8; 64];
            let n = read_head(input, &mut head)?;
            let src = super::sniff::sniff(&head[..n])
                .ok_or_else(|| anyhow!("{}: not a supported image", input.display()))?;
            super::transform::default_output(src)
        }
    };
    let mut p = dir.join(stem);
    p.set_extension(format.extension());
    Ok(p)
}

fn read_head(path: &Path, buf: &mut [u8]) -> anyhow::Result<usize> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

fn transform_file(
    input: &Path,
    output: &Path,
    opts: &TransformOptions,
    limits: &Limits,
) -> anyhow::Result<()> {
    let src = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let t = transform(&src, opts, limits).map_err(|e| anyhow!("{}: {e}", input.display()))?;
    std::fs::write(output, &t.bytes).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}
