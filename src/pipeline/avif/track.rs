//! AVIF image sequences (`.avifs`, animated AVIF): the first frame of the
//! AV1 video track in `moov`, and its alpha track.
//!
//! We make stills of animated AVIF (as the README says of animations we
//! cannot keep animated), so only the first sample matters: its offset is
//! the first chunk's, its size the first entry of `stsz`. A sync sample by
//! definition, it decodes on its own. Files that also carry a primary item
//! are read through that item instead (see `file::parse`).

use super::heif::{self, Av1Item, Avif, Coded};
use crate::pipeline::error::PipelineError;

fn corrupt(what: &str) -> PipelineError {
    PipelineError::Corrupt(format!("AVIF sequence: {what}"))
}

/// What one `trak` says that matters here.
#[derive(Debug, Default)]
struct Track {
    id: u32,
    handler: [u8; 4],
    /// The sample entry is `av01`.
    av1: bool,
    width: u32,
    height: u32,
    /// File offset and size of the first sample.
    first: Option<(u64, u64)>,
    samples: u32,
    /// Track ids this one is an auxiliary of (`tref`/`auxl`).
    aux_of: Vec<u32>,
    icc: Option<Vec<u8>>,
}

fn tracks(moov: &[u8]) -> Result<Vec<Track>, PipelineError> {
    let mut out = Vec::new();
    for b in heif::boxes(moov) {
        let b = b?;
        if &b.ty == b"trak" {
            out.push(track(b.body)?);
        }
        if out.len() > 64 {
            return Err(corrupt("too many tracks"));
        }
    }
    Ok(out)
}

fn track(body: &[u8]) -> Result<Track, PipelineError> {
    let mut t = Track::default();
    if let Some(tkhd) = heif::child(body, b"tkhd")? {
        let mut r = heif::Reader::new(tkhd.body);
        let (v, _) = r.full()?;
        r.bytes(if v == 1 { 16 } else { 8 })?; // creation, modification
        t.id = r.u32()?;
    }
    if let Some(tref) = heif::child(body, b"tref")? {
        if let Some(aux) = heif::child(tref.body, b"auxl")? {
            let mut r = heif::Reader::new(aux.body);
            while !r.rest().is_empty() {
                t.aux_of.push(r.u32()?);
            }
        }
    }
    let Some(mdia) = heif::child(body, b"mdia")? else {
        return Ok(t);
    };
    if let Some(hdlr) = heif::child(mdia.body, b"hdlr")? {
        let mut r = heif::Reader::new(hdlr.body);
        r.full()?;
        r.u32()?;
        t.handler.copy_from_slice(r.bytes(4)?);
    }
    let stbl = match heif::child(mdia.body, b"minf")? {
        Some(minf) => heif::child(minf.body, b"stbl")?,
        None => None,
    };
    if let Some(stbl) = stbl {
        sample_table(stbl.body, &mut t)?;
    }
    Ok(t)
}

/// Sample entry, sample sizes and the first chunk's offset.
fn sample_table(stbl: &[u8], t: &mut Track) -> Result<(), PipelineError> {
    if let Some(stsd) = heif::child(stbl, b"stsd")? {
        let mut r = heif::Reader::new(stsd.body);
        r.full()?;
        r.u32()?; // entry count
        if let Some(Ok(entry)) = heif::boxes(r.rest()).next() {
            t.av1 = &entry.ty == b"av01";
            let mut e = heif::Reader::new(entry.body);
            // SampleEntry (8) and VisualSampleEntry fields up to the size.
            e.bytes(24)?;
            t.width = e.u16()?.into();
            t.height = e.u16()?.into();
            // The rest of the 78-byte visual header, then child boxes.
            if let Some(children) = entry.body.get(78..) {
                if let Some(colr) = heif::child(children, b"colr")? {
                    if matches!(colr.body.get(..4), Some(b"prof" | b"rICC")) {
                        t.icc = Some(colr.body[4..].to_vec());
                    }
                }
            }
        }
    }
    let mut size = None;
    if let Some(stsz) = heif::child(stbl, b"stsz")? {
        let mut r = heif::Reader::new(stsz.body);
        r.full()?;
        let fixed = r.u32()?;
        t.samples = r.u32()?;
        if t.samples > 0 {
            size = Some(if fixed != 0 { fixed } else { r.u32()? });
        }
    }
    let offset = if let Some(stco) = heif::child(stbl, b"stco")? {
        let mut r = heif::Reader::new(stco.body);
        r.full()?;
        (r.u32()? > 0).then(|| r.u32().map(u64::from)).transpose()?
    } else if let Some(co64) = heif::child(stbl, b"co64")? {
        let mut r = heif::Reader::new(co64.body);
        r.full()?;
        (r.u32()? > 0).then(|| r.uint(8)).transpose()?
    } else {
        None
    };
    t.first = offset.zip(size.map(u64::from));
    Ok(())
}

/// The colour track: the first AV1 track whose handler is for pictures or
/// video (not an auxiliary).
fn color_track(ts: &[Track]) -> Option<&Track> {
    ts.iter()
        .find(|t| t.av1 && matches!(&t.handler, b"pict" | b"vide"))
}

/// Frames of the colour track (1 when there is none: a still).
pub(crate) fn frame_count(moov: &[u8]) -> Result<u32, PipelineError> {
    Ok(color_track(&tracks(moov)?).map_or(1, |t| t.samples.max(1)))
}

fn first_sample(file: &[u8], t: &Track) -> Result<Av1Item, PipelineError> {
    let (off, len) = t.first.ok_or_else(|| corrupt("no samples"))?;
    let start = usize::try_from(off).unwrap_or(usize::MAX);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let data = file
        .get(start..start.saturating_add(len))
        .ok_or_else(|| corrupt("the first frame runs past the end"))?;
    Ok(Av1Item {
        data: data.to_vec(),
        operating_point: 0,
        layer: None,
    })
}

/// The first frame of the sequence, with the first frame of its alpha
/// track if it has one.
pub(crate) fn first_frame(file: &[u8], moov: &[u8]) -> Result<Avif, PipelineError> {
    let ts = tracks(moov)?;
    let color = color_track(&ts).ok_or_else(|| corrupt("no AV1 video track"))?;
    if color.width == 0 || color.height == 0 {
        return Err(corrupt("the track has no size"));
    }
    let alpha = ts
        .iter()
        .find(|t| t.av1 && &t.handler == b"auxv" && t.aux_of.contains(&color.id));
    Ok(Avif {
        color: Coded::Single(first_sample(file, color)?),
        alpha: alpha
            .map(|a| first_sample(file, a).map(Coded::Single))
            .transpose()?,
        premultiplied: false,
        width: color.width,
        height: color.height,
        crop: None,
        orientation: 1,
        icc: color.icc.clone(),
        frames: color.samples.max(1),
    })
}
