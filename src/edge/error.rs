//! Why the edge refused a request before any work was done for it.
//! Mapped to HTTP statuses, with the other layers' errors, in
//! [`crate::error`].

/// A request refused at the edge; the message is the one line the client
/// gets and the log shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// The `url` parameter is longer than [`super::url_length::MAX_URL_BYTES`]: 414.
    #[error("the `url` parameter is {len} bytes long; at most {max} are accepted")]
    UrlTooLong { len: usize, max: usize },
    /// `URL_SIGNING_KEYS` is set and the request has no `sig`: 403.
    #[error("this server only serves signed URLs: the `sig` parameter is missing")]
    MissingSignature,
    /// The `sig` does not match the request under any key: 403.
    #[error("invalid signature: `sig` does not match the url and options under any key")]
    BadSignature,
    /// The source host matches no `ALLOWED_SOURCES` pattern: 403.
    #[error("source host {0} is not allowed (ALLOWED_SOURCES)")]
    SourceNotAllowed(String),
    /// `preset=` names no preset in `PRESETS`: 400.
    #[error("unknown preset `{0}`")]
    UnknownPreset(String),
    /// `preset=` given more than once: 400.
    #[error("`preset` given more than once")]
    DuplicatePreset,
    /// `ONLY_PRESETS=true` and the request has an option of its own: 400.
    #[error("option `{0}` is not allowed here: this server only accepts presets (preset=NAME)")]
    OptionOutsidePreset(String),
    /// The query with the preset's options would not form a URI (never
    /// seen: the options are plain tokens): 400.
    #[error("the preset's options do not form a valid query: {0}")]
    Unexpandable(String),
    /// `MAX_IN_FLIGHT` requests are already being answered: 503.
    #[error("too many requests in flight (MAX_IN_FLIGHT {0}); retry shortly")]
    InFlight(usize),
}

impl EdgeError {
    /// Short stable label for `img_proxy_requests_refused_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            EdgeError::UrlTooLong { .. } => "url_too_long",
            EdgeError::MissingSignature => "missing_signature",
            EdgeError::BadSignature => "bad_signature",
            EdgeError::SourceNotAllowed(_) => "source_not_allowed",
            EdgeError::UnknownPreset(_)
            | EdgeError::DuplicatePreset
            | EdgeError::Unexpandable(_) => "bad_preset",
            EdgeError::OptionOutsidePreset(_) => "option_outside_preset",
            EdgeError::InFlight(_) => "in_flight",
        }
    }
}
