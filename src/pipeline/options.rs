//! Transform options: parsing the query string, resolving `format=auto`,
//! and the normalised form used as a cache key.
//!
//! Two types on purpose. [`RequestedOptions`] is what the user typed, and
//! may still say "auto" (which depends on the request's `Accept` header).
//! [`TransformOptions`] is concrete and normalised — `w=100&dpr=2` and
//! `w=200` become the same value — so it can key the cache and travel
//! between gateway and worker without either side reinterpreting it.

use super::decimal::decimal;
use serde::{Deserialize, Serialize};

use super::gravity::{Gravity, GRAVITY_EXPECTED};

/// Largest width or height a request may ask for (after `dpr`). Bigger
/// outputs are never useful on a web page and only cost memory.
pub const MAX_DIMENSION: u32 = 8192;
/// Quality used when the request does not say.
pub const DEFAULT_QUALITY: u8 = 80;
/// Largest device pixel ratio accepted; phones top out around 3–4.
pub const MAX_DPR: f64 = 4.0;

/// How the image is fitted into the requested box.
///
/// Only meaningful when both `w` and `h` are given; with one side (or none)
/// every fit behaves as `Inside`, so options normalise it to `Inside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale down to fit within the box, keeping the aspect ratio; never
    /// enlarges. The safe default for thumbnails.
    #[default]
    Inside,
    /// Scale to cover the box and crop the overflow (centred): exact output
    /// size, aspect kept, may enlarge.
    Cover,
    /// Scale to fit within the box and pad to the exact size (transparent,
    /// or white for JPEG); may enlarge.
    Contain,
    /// Stretch to exactly the box, ignoring the aspect ratio; may enlarge.
    Fill,
}

impl Fit {
    /// The query-string spelling, used by [`TransformOptions::to_query`] so
    /// that parsing and printing cannot drift apart.
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Inside => "inside",
            Fit::Cover => "cover",
            Fit::Contain => "contain",
            Fit::Fill => "fill",
        }
    }

    /// Parses the query-string spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Fit> {
        match s {
            "inside" => Some(Fit::Inside),
            "cover" => Some(Fit::Cover),
            "contain" => Some(Fit::Contain),
            "fill" => Some(Fit::Fill),
            _ => None,
        }
    }
}

/// An encoding we can produce. GIF is deliberately absent: re-encoding to
/// GIF loses colours, so GIF sources become PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Photos without transparency.
    Jpeg,
    /// Lossless, keeps alpha.
    Png,
    /// Lossy WebP, keeps alpha.
    WebP,
    /// Lossy AVIF, keeps alpha; smallest, slowest to encode.
    Avif,
}

impl OutputFormat {
    /// The `Content-Type` to answer with, so the header always matches the
    /// bytes we produced.
    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::WebP => "image/webp",
            OutputFormat::Avif => "image/avif",
        }
    }

    /// The usual file extension, for the CLI's output names.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Png => "png",
            OutputFormat::WebP => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    /// The query-string spelling (`format=`).
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
            OutputFormat::WebP => "webp",
            OutputFormat::Avif => "avif",
        }
    }

    /// Parses the query-string spelling (`jpg` accepted as an alias).
    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "jpeg" | "jpg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            "webp" => Some(OutputFormat::WebP),
            "avif" => Some(OutputFormat::Avif),
            _ => None,
        }
    }

    /// Whether the format can carry transparency; JPEG output is composited
    /// on white instead.
    pub fn has_alpha(self) -> bool {
        !matches!(self, OutputFormat::Jpeg)
    }

    /// Whether `q` changes the output; it does not for lossless PNG, so the
    /// cache key drops it there.
    pub fn uses_quality(self) -> bool {
        !matches!(self, OutputFormat::Png)
    }
}

/// A query parameter that could not be accepted. The message names the
/// parameter and the accepted range so the caller can fix the URL without
/// reading our source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// The value does not parse or is out of range.
    #[error("invalid value for `{name}`: {expected}")]
    Invalid {
        /// The query key, e.g. `w`.
        name: &'static str,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The same key appears twice; we refuse rather than guess which wins,
    /// because two caches could otherwise guess differently.
    #[error("`{name}` given more than once")]
    Duplicate {
        /// The query key, e.g. `w`.
        name: &'static str,
    },
}

/// The `format` parameter before `Accept` is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestedFormat {
    /// Pick the best format the client accepts.
    Auto,
    /// Exactly this format.
    Exact(OutputFormat),
}

/// What the user asked for, parsed from the query string (ignores `url` and
/// unknown keys). Kept separate from [`TransformOptions`] because
/// `format=auto` can only be resolved once the `Accept` header is known.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestedOptions {
    /// `w`, before `dpr`.
    pub w: Option<u32>,
    /// `h`, before `dpr`.
    pub h: Option<u32>,
    /// `fit`.
    pub fit: Option<Fit>,
    /// `q`.
    pub quality: Option<u8>,
    /// `format`.
    pub format: Option<RequestedFormat>,
    /// `dpr`, a multiplier for `w` and `h`.
    pub dpr: Option<f64>,
    /// `blur`.
    pub blur: Option<Sigma>,
    /// `sharpen`.
    pub sharpen: Option<Sigma>,
    /// `gravity`.
    pub gravity: Option<Gravity>,
}

/// A Gaussian sigma in pixels, kept in hundredths so equal requests
/// compare (and cache) as one: `blur=1.5` and `blur=1.50` are one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sigma(u16);

impl Sigma {
    /// The sigma in pixels.
    pub fn pixels(self) -> f32 {
        f32::from(self.0) / 100.0
    }
}

impl std::fmt::Display for Sigma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = format!("{}.{:02}", self.0 / 100, self.0 % 100);
        f.write_str(s.trim_end_matches('0').trim_end_matches('.'))
    }
}

const DIM_EXPECTED: &str = "must be an integer from 1 to 8192";

fn parse_dim(name: &'static str, v: &str) -> Result<u32, OptionError> {
    let err = OptionError::Invalid {
        name,
        expected: DIM_EXPECTED,
    };
    // Plain digits only: no sign, no spaces, no `1e3`, at most 5 digits so
    // the parse cannot overflow.
    if v.is_empty() || v.len() > 5 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err);
    }
    match v.parse::<u32>() {
        Ok(n) if (1..=MAX_DIMENSION).contains(&n) => Ok(n),
        _ => Err(err),
    }
}

fn parse_quality(v: &str) -> Result<u8, OptionError> {
    let err = OptionError::Invalid {
        name: "q",
        expected: "must be an integer from 1 to 100",
    };
    if v.is_empty() || v.len() > 3 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err);
    }
    match v.parse::<u8>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(err),
    }
}

fn parse_dpr(v: &str) -> Result<f64, OptionError> {
    decimal(v)
        .filter(|d| (1.0..=MAX_DPR).contains(d))
        .ok_or(OptionError::Invalid {
            name: "dpr",
            expected: "must be a number from 1 to 4",
        })
}

/// `blur` (0.3 to 100) and `sharpen` (0.3 to 10), rounded to hundredths.
fn parse_sigma(name: &'static str, v: &str) -> Result<Sigma, OptionError> {
    let (max, expected) = match name {
        "blur" => (100.0, "must be a number from 0.3 to 100"),
        _ => (10.0, "must be a number from 0.3 to 10"),
    };
    decimal(v)
        .filter(|s| (0.3..=max).contains(s))
        .map(|s| Sigma((s * 100.0).round() as u16))
        .ok_or(OptionError::Invalid { name, expected })
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), OptionError> {
    if slot.is_some() {
        return Err(OptionError::Duplicate { name });
    }
    *slot = Some(v);
    Ok(())
}

impl RequestedOptions {
    /// Parses decoded query pairs. `url` and unknown keys are ignored so
    /// that cache-busting parameters do not break requests; every known key
    /// is validated strictly so that typos fail loudly instead of silently
    /// serving the original.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RequestedOptions, OptionError> {
        let mut o = RequestedOptions::default();
        for (k, v) in pairs {
            match k {
                "w" => set_once(&mut o.w, "w", parse_dim("w", v)?)?,
                "h" => set_once(&mut o.h, "h", parse_dim("h", v)?)?,
                "fit" => {
                    let fit = Fit::parse(v).ok_or(OptionError::Invalid {
                        name: "fit",
                        expected: "must be one of inside, cover, contain, fill",
                    })?;
                    set_once(&mut o.fit, "fit", fit)?
                }
                "q" => set_once(&mut o.quality, "q", parse_quality(v)?)?,
                "format" => {
                    let f = if v == "auto" {
                        RequestedFormat::Auto
                    } else {
                        RequestedFormat::Exact(OutputFormat::parse(v).ok_or(
                            OptionError::Invalid {
                                name: "format",
                                expected: "must be one of jpeg, png, webp, avif, auto",
                            },
                        )?)
                    };
                    set_once(&mut o.format, "format", f)?
                }
                "dpr" => set_once(&mut o.dpr, "dpr", parse_dpr(v)?)?,
                "blur" => set_once(&mut o.blur, "blur", parse_sigma("blur", v)?)?,
                "sharpen" => set_once(&mut o.sharpen, "sharpen", parse_sigma("sharpen", v)?)?,
                "gravity" => {
                    let g = Gravity::parse(v).ok_or(OptionError::Invalid {
                        name: "gravity",
                        expected: GRAVITY_EXPECTED,
                    })?;
                    set_once(&mut o.gravity, "gravity", g)?
                }
                _ => {}
            }
        }
        Ok(o)
    }

    /// Resolves `format=auto` against the request's `Accept` header: AVIF
    /// if accepted, else WebP, else the source format.
    pub fn resolve(&self, accept: Option<&str>) -> Resolved {
        let (format, varies_on_accept) = match self.format {
            None => (None, false),
            Some(RequestedFormat::Exact(f)) => (Some(f), false),
            Some(RequestedFormat::Auto) => {
                let accept = accept.unwrap_or("");
                let f = if accepts(accept, "image/avif") {
                    Some(OutputFormat::Avif)
                } else if accepts(accept, "image/webp") {
                    Some(OutputFormat::WebP)
                } else {
                    None
                };
                (f, true)
            }
        };
        let dpr = self.dpr.unwrap_or(1.0);
        let scale = |v: Option<u32>| {
            v.map(|n| ((f64::from(n) * dpr).round() as u32).clamp(1, MAX_DIMENSION))
        };
        let opts = TransformOptions {
            w: scale(self.w),
            h: scale(self.h),
            fit: self.fit.unwrap_or_default(),
            quality: self.quality.unwrap_or(DEFAULT_QUALITY),
            format,
            blur: self.blur,
            sharpen: self.sharpen,
            gravity: self.gravity.unwrap_or_default(),
        };
        Resolved {
            options: opts.normalized(),
            varies_on_accept,
        }
    }
}

/// Options after [`RequestedOptions::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The concrete options: the cache key and what the worker runs.
    pub options: TransformOptions,
    /// Whether the answer depended on `Accept` (exactly when the request
    /// said `format=auto`), so it must carry `Vary: Accept`.
    pub varies_on_accept: bool,
}

/// Whether an `Accept` header lists `mime` with a non-zero q-value. Only the
/// exact type counts: `image/*` and `*/*` are sent by every browser,
/// including ones that cannot decode AVIF.
fn accepts(accept: &str, mime: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let ty = parts.next().unwrap_or("").trim();
        if !ty.eq_ignore_ascii_case(mime) {
            return false;
        }
        for p in parts {
            let p = p.trim();
            if let Some(q) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                if let Ok(q) = q.trim().parse::<f32>() {
                    return q > 0.0;
                }
            }
        }
        true
    })
}

/// Concrete, normalised options: the cache key and what the worker runs.
///
/// Normalised means two requests that must produce the same bytes compare
/// equal: `dpr` is folded into the sizes, a `fit` that cannot matter (fewer
/// than two sides given) becomes `Inside`, `gravity` is dropped (reset to
/// `center`) unless the fit crops (`cover`), and `q` is dropped (reset to
/// the default) for PNG output.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransformOptions {
    /// Output width in pixels (after `dpr`), or `None` to derive it.
    pub w: Option<u32>,
    /// Output height in pixels (after `dpr`), or `None` to derive it.
    pub h: Option<u32>,
    /// How to fit into `width` x `height`.
    pub fit: Fit,
    /// Encoder quality, 1..=100.
    pub quality: u8,
    /// Output encoding; `None` keeps the source format (GIF becomes PNG).
    pub format: Option<OutputFormat>,
    /// Gaussian blur of the output (sigma in output pixels).
    #[serde(default)]
    pub blur: Option<Sigma>,
    /// Unsharp mask after downscaling (sigma in output pixels).
    #[serde(default)]
    pub sharpen: Option<Sigma>,
    /// What a `cover` crop keeps.
    #[serde(default)]
    pub gravity: Gravity,
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            w: None,
            h: None,
            fit: Fit::Inside,
            quality: DEFAULT_QUALITY,
            format: None,
            blur: None,
            sharpen: None,
            gravity: Gravity::Center,
        }
    }
}

impl TransformOptions {
    /// Brings equivalent option sets to one value (see the type's doc), and
    /// clamps fields that were set directly rather than parsed.
    pub fn normalized(mut self) -> TransformOptions {
        self.w = self.w.map(|w| w.clamp(1, MAX_DIMENSION));
        self.h = self.h.map(|h| h.clamp(1, MAX_DIMENSION));
        self.quality = self.quality.clamp(1, 100);
        if self.w.is_none() || self.h.is_none() {
            self.fit = Fit::Inside;
        }
        self.gravity = match self.fit {
            Fit::Cover => self.gravity.normalized(),
            _ => Gravity::Center,
        };
        if self.format.is_some_and(|f| !f.uses_quality()) {
            self.quality = DEFAULT_QUALITY;
        }
        self
    }

    /// True when nothing was asked: the worker can return the original bytes
    /// untouched (and skip the CPU pool entirely).
    pub fn is_identity(&self) -> bool {
        *self == TransformOptions::default()
    }

    /// Canonical string form for cache keys: the same options always give
    /// the same string whatever the query order; identity gives `""`.
    pub fn cache_key(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.to_query() {
            if !s.is_empty() {
                s.push('&');
            }
            s.push_str(k);
            s.push('=');
            s.push_str(&v);
        }
        s
    }

    /// Query pairs that parse back ([`RequestedOptions::from_query`] then
    /// `resolve(None)`) to an equal value; used on the internal worker URL.
    /// Defaults are omitted, keys come in a fixed order.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let n = self.clone().normalized();
        let mut q = Vec::with_capacity(5);
        if let Some(w) = n.w {
            q.push(("w", w.to_string()));
        }
        if let Some(h) = n.h {
            q.push(("h", h.to_string()));
        }
        if n.fit != Fit::Inside {
            q.push(("fit", n.fit.as_str().to_string()));
        }
        if n.quality != DEFAULT_QUALITY {
            q.push(("q", n.quality.to_string()));
        }
        if let Some(f) = n.format {
            q.push(("format", f.as_str().to_string()));
        }
        if let Some(s) = n.blur {
            q.push(("blur", s.to_string()));
        }
        if let Some(s) = n.sharpen {
            q.push(("sharpen", s.to_string()));
        }
        if n.gravity != Gravity::Center {
            q.push(("gravity", n.gravity.to_query()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<RequestedOptions, OptionError> {
        RequestedOptions::from_query(q.split('&').filter(|s| !s.is_empty()).map(|kv| {
            let mut it = kv.splitn(2, '=');
            (it.next().unwrap_or(""), it.next().unwrap_or(""))
        }))
    }

    fn resolved(q: &str) -> TransformOptions {
        parse(q).unwrap().resolve(None).options
    }

    #[test]
    fn bad_values_name_the_option() {
        for (q, name) in [
            ("w=-5", "`w`"),
            ("w=abc", "`w`"),
            ("w=100000", "`w`"),
            ("w=0", "`w`"),
            ("w=", "`w`"),
            ("h=1.5", "`h`"),
            ("h=8193", "`h`"),
            ("fit=sideways", "`fit`"),
            ("format=bmp9", "`format`"),
            ("q=0", "`q`"),
            ("q=101", "`q`"),
            ("dpr=0.5", "`dpr`"),
            ("dpr=5", "`dpr`"),
            ("dpr=nan", "`dpr`"),
            ("dpr=inf", "`dpr`"),
            ("blur=0.2", "`blur`"),
            ("blur=101", "`blur`"),
            ("blur=-1", "`blur`"),
            ("blur=nan", "`blur`"),
            ("sharpen=10.5", "`sharpen`"),
            ("sharpen=0", "`sharpen`"),
            ("blur=1&blur=2", "`blur`"),
            ("w=10&w=20", "`w`"),
            ("gravity=middle", "`gravity`"),
            ("gravity=fp:2:0", "`gravity`"),
            ("gravity=fp:0.5", "`gravity`"),
            ("gravity=smart&gravity=north", "`gravity`"),
        ] {
            let e = parse(q).expect_err(q).to_string();
            assert!(e.contains(name), "{q}: {e}");
        }
        assert_eq!(
            parse("w=100000").unwrap_err().to_string(),
            "invalid value for `w`: must be an integer from 1 to 8192"
        );
    }

    #[test]
    fn ignores_url_and_unknown_keys() {
        let o = resolved("url=http://x/a.jpg?w=5&w=300&utm=1");
        assert_eq!(o.w, Some(300));
    }

    #[test]
    fn dpr_multiplies_and_caps() {
        assert_eq!(resolved("w=100&dpr=2"), resolved("w=200"));
        assert_eq!(resolved("w=100&h=33&dpr=1.5").h, Some(50));
        assert_eq!(resolved("w=5000&dpr=4").w, Some(MAX_DIMENSION));
    }

    #[test]
    fn cache_key_is_canonical() {
        assert_eq!(
            resolved("w=100&q=70").cache_key(),
            resolved("q=70&w=100").cache_key()
        );
        assert_eq!(resolved("w=100&q=70").cache_key(), "w=100&q=70");
        assert_eq!(resolved("").cache_key(), "");
        assert!(resolved("").is_identity());
        assert!(resolved("q=80").is_identity());
        assert!(resolved("fit=cover").is_identity());
        assert!(!resolved("w=1").is_identity());
        assert!(!resolved("format=png").is_identity());
        // fit only matters with both sides; q does not matter for PNG
        assert_eq!(resolved("w=10&fit=cover"), resolved("w=10"));
        assert_eq!(resolved("format=png&q=20"), resolved("format=png"));
        // Sigmas in hundredths: one key for one value.
        assert_eq!(resolved("blur=1.50").cache_key(), "blur=1.5");
        assert_eq!(resolved("sharpen=0.304").cache_key(), "sharpen=0.3");
        assert!(!resolved("blur=2").is_identity());
        // Gravity only with a crop; the default makes no key of its own.
        let cover = "w=10&h=20&fit=cover";
        assert_eq!(
            resolved(&format!("{cover}&gravity=center")),
            resolved(cover)
        );
        assert_eq!(
            resolved(&format!("{cover}&gravity=fp:0.5:0.5")),
            resolved(cover)
        );
        assert_eq!(resolved("w=10&h=20&gravity=smart"), resolved("w=10&h=20"));
        assert_eq!(resolved("gravity=north"), resolved(""));
        assert_eq!(
            resolved(&format!("{cover}&gravity=fp:0.250:1")).cache_key(),
            "w=10&h=20&fit=cover&gravity=fp:0.25:1"
        );
        assert_eq!(
            resolved(&format!("{cover}&gravity=fp:1:0")).cache_key(),
            "w=10&h=20&fit=cover&gravity=north-east"
        );
    }

    #[test]
    fn to_query_round_trips() {
        for q in [
            "",
            "w=100",
            "h=7&dpr=2.5",
            "w=10&h=20&fit=cover&q=55&format=webp",
            "w=10&h=20&fit=contain&format=avif",
            "w=8192&h=8192&fit=fill&format=jpeg&q=1",
            "format=png&q=3",
            "w=10&blur=0.3&sharpen=10",
            "blur=100&sharpen=1.25",
            "w=10&h=20&fit=cover&gravity=smart",
            "w=10&h=20&fit=cover&gravity=south-west",
            "w=10&h=20&fit=cover&gravity=fp:0.1:0.9",
        ] {
            let o = resolved(q);
            let pairs = o.to_query();
            let back = RequestedOptions::from_query(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                .unwrap()
                .resolve(None)
                .options;
            assert_eq!(o, back, "{q}");
        }
    }

    #[test]
    fn auto_format_follows_accept() {
        let r = parse("format=auto&w=10").unwrap();
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(
            r.resolve(Some(chrome)),
            Resolved {
                options: TransformOptions {
                    format: Some(OutputFormat::Avif),
                    ..resolved("w=10")
                },
                varies_on_accept: true
            }
        );
        let format_and_vary = |r: Resolved| (r.options.format, r.varies_on_accept);
        let webp = Some(OutputFormat::WebP);
        assert_eq!(
            format_and_vary(r.resolve(Some("image/webp,*/*"))),
            (webp, true)
        );
        let no_avif = r.resolve(Some("image/avif;q=0, image/webp"));
        assert_eq!(format_and_vary(no_avif), (webp, true));
        assert_eq!(
            format_and_vary(r.resolve(Some("image/*,*/*"))),
            (None, true)
        );
        assert_eq!(format_and_vary(r.resolve(None)), (None, true));
        let exact = parse("format=webp").unwrap().resolve(Some(chrome));
        assert_eq!(format_and_vary(exact), (webp, false));
    }
}
