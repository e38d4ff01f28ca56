//! Presets (`PRESETS`, `preset=NAME`) and presets-only mode (`ONLY_PRESETS`).
//!
//! A preset is a named set of options: `thumb=w:300,h:300,fit:cover`. The
//! middleware replaces `preset=NAME` in the query with the preset's
//! options before the gateway parses it, so a preset is exactly the same
//! request (and cache entry) as its options spelled out. Options given
//! beside a preset override the preset's. With `ONLY_PRESETS=true`, a
//! request may name a preset but no option of its own, which bounds the
//! variants a stranger can make (and so the CPU and cache they can spend).
//! Signing (when on) covers `preset=` like any parameter, since it runs
//! first, on the query as sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::EdgeError;
use super::query;
use crate::pipeline::RequestedOptions;

/// The query parameter that names a preset.
pub const PRESET_PARAM: &str = "preset";

/// Query names that are image options (what `ONLY_PRESETS` refuses).
pub const OPTION_NAMES: [&str; 6] = ["w", "h", "fit", "q", "format", "dpr"];

/// The presets and whether only they are allowed.
#[derive(Debug, Clone, Default)]
pub struct Presets {
    by_name: BTreeMap<String, Vec<(String, String)>>,
    only_presets: bool,
}

impl Presets {
    /// Parses `PRESETS` (`name=key:value,key:value;name2=...`), checking
    /// every preset's options as a request's would be checked.
    pub fn parse(spec: &str, only_presets: bool) -> Result<Presets, String> {
        let mut by_name = BTreeMap::new();
        for item in spec.split(';').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, body) = item
                .split_once('=')
                .ok_or_else(|| format!("PRESETS: {item:?} is not NAME=key:value,..."))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(format!(
                    "PRESETS: preset name {name:?} must be letters, digits, - or _"
                ));
            }
            let mut options = Vec::new();
            for opt in body.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                let (k, v) = opt
                    .split_once(':')
                    .ok_or_else(|| format!("PRESETS: preset {name}: {opt:?} is not key:value"))?;
                let k = k.trim();
                if !OPTION_NAMES.contains(&k) {
                    return Err(format!("PRESETS: preset {name}: unknown option `{k}`"));
                }
                options.push((k.to_string(), v.trim().to_string()));
            }
            RequestedOptions::from_query(options.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| format!("PRESETS: preset {name}: {e}"))?;
            if by_name.insert(name.to_string(), options).is_some() {
                return Err(format!("PRESETS: preset {name} is defined twice"));
            }
        }
        if only_presets && by_name.is_empty() {
            return Err("ONLY_PRESETS is true but PRESETS defines none".into());
        }
        Ok(Presets {
            by_name,
            only_presets,
        })
    }

    /// Whether there is anything for the middleware to do.
    pub fn is_active(&self) -> bool {
        !self.by_name.is_empty()
    }

    /// The query pairs with `preset=NAME` replaced by the preset's options
    /// (the request's own options win), or `None` when nothing changes.
    pub fn expand(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Option<Vec<(String, String)>>, EdgeError> {
        let mut names = pairs.iter().filter(|(k, _)| k == PRESET_PARAM);
        let chosen = names.next();
        if names.next().is_some() {
            return Err(EdgeError::DuplicatePreset);
        }
        if self.only_presets {
            if let Some((k, _)) = pairs
                .iter()
                .find(|(k, _)| OPTION_NAMES.contains(&k.as_str()))
            {
                return Err(EdgeError::OptionOutsidePreset(k.clone()));
            }
        }
        let Some((_, name)) = chosen else {
            return Ok(None);
        };
        let preset = self
            .by_name
            .get(name)
            .ok_or_else(|| EdgeError::UnknownPreset(name.clone()))?;
        let mut out: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != PRESET_PARAM)
            .cloned()
            .collect();
        for (k, v) in preset {
            if !out.iter().any(|(ok, _)| ok == k) {
                out.push((k.clone(), v.clone()));
            }
        }
        Ok(Some(out))
    }
}

/// Middleware: expands `preset=` in the request's query.
pub async fn expand(State(presets): State<Arc<Presets>>, mut req: Request, next: Next) -> Response {
    let pairs = query::pairs(req.uri());
    match presets.expand(&pairs) {
        Ok(None) => {}
        Ok(Some(expanded)) => {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.extend_pairs(expanded);
            let path_and_query = format!("{}?{}", req.uri().path(), q.finish());
            match path_and_query.parse::<Uri>() {
                Ok(uri) => *req.uri_mut() = uri,
                Err(e) => return EdgeError::Unexpandable(e.to_string()).into_response(),
            }
        }
        Err(e) => return e.into_response(),
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "thumb=w:300,h:300,fit:cover;avatar=w:64,h:64,fit:cover,format:webp";

    use crate::edge::query::owned;

    #[test]
    fn a_preset_becomes_its_options_and_request_options_win() {
        let p = Presets::parse(SPEC, false).unwrap();
        let got = p
            .expand(&owned(&[
                ("url", "u"),
                ("preset", "avatar"),
                ("format", "png"),
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            owned(&[
                ("url", "u"),
                ("format", "png"),
                ("w", "64"),
                ("h", "64"),
                ("fit", "cover")
            ])
        );
        assert_eq!(
            p.expand(&owned(&[("url", "u"), ("w", "10")])).unwrap(),
            None
        );
    }

    #[test]
    fn unknown_and_repeated_presets_are_refused_by_name() {
        let p = Presets::parse(SPEC, false).unwrap();
        let err = p
            .expand(&owned(&[("url", "u"), ("preset", "huge")]))
            .unwrap_err();
        assert_eq!(err.to_string(), "unknown preset `huge`");
        assert_eq!(
            p.expand(&owned(&[("preset", "thumb"), ("preset", "thumb")])),
            Err(EdgeError::DuplicatePreset)
        );
    }

    #[test]
    fn only_presets_refuses_any_option_of_the_request() {
        let p = Presets::parse(SPEC, true).unwrap();
        assert_eq!(
            p.expand(&owned(&[("url", "u"), ("preset", "thumb"), ("q", "90")])),
            Err(EdgeError::OptionOutsidePreset("q".into()))
        );
        assert_eq!(
            p.expand(&owned(&[("url", "u"), ("w", "90")])),
            Err(EdgeError::OptionOutsidePreset("w".into()))
        );
        assert!(p
            .expand(&owned(&[("url", "u"), ("preset", "thumb")]))
            .unwrap()
            .is_some());
        assert_eq!(p.expand(&owned(&[("url", "u")])).unwrap(), None);
    }

    #[test]
    fn bad_specs_name_the_variable_and_the_preset() {
        for (spec, needle) in [
            ("thumb", "PRESETS"),
            ("thumb=w:0", "preset thumb: invalid value for `w`"),
            ("thumb=width:3", "unknown option `width`"),
            ("thumb=w300", "not key:value"),
            ("a=w:1;a=w:2", "defined twice"),
            ("b d=w:1", "preset name"),
        ] {
            let err = Presets::parse(spec, false).unwrap_err();
            assert!(
                err.contains(needle) && err.starts_with("PRESETS"),
                "{spec}: {err}"
            );
        }
        assert!(Presets::parse("", true)
            .unwrap_err()
            .contains("ONLY_PRESETS"));
    }

    #[test]
    fn option_names_are_the_parsers() {
        for name in OPTION_NAMES {
            let err = RequestedOptions::from_query([(name, "!")]).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{name}`")),
                "{name}: {err}"
            );
        }
    }
}
