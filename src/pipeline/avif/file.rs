//! An AVIF file as the decoder needs it: the primary still image described
//! by its `meta` box, or, for an image sequence without one, the first
//! frame of its track (`moov`). The one module that knows both readers
//! (`heif` for items, `track` for sequences), so neither depends on the
//! other.

use super::heif::{self, Avif};
use super::track;
use crate::pipeline::error::PipelineError;

/// Parses an AVIF file into what the decoder needs.
pub(crate) fn parse(file: &[u8]) -> Result<Avif, PipelineError> {
    let mut meta = None;
    let mut moov = None;
    for b in heif::boxes(file) {
        let b = b?;
        match &b.ty {
            b"meta" if meta.is_none() => meta = Some(b.body),
            b"moov" if moov.is_none() => moov = Some(b.body),
            _ => {}
        }
    }
    let meta = meta.map(heif::read_meta).transpose()?;
    let frames = match moov {
        Some(m) => track::frame_count(m)?,
        None => 1,
    };
    match (meta, moov) {
        (Some(m), _) if m.primary.is_some() => heif::still(file, &m, frames),
        (_, Some(moov)) => track::first_frame(file, moov),
        _ => Err(heif::corrupt("no primary item")),
    }
}
