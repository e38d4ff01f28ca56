//! The `gravity` option: which part of the source a `fit=cover` crop keeps.
//!
//! A type of its own (parsing, spelling, normalisation) so that
//! `options.rs` only stores it and `crop.rs` only reads it. Focal points
//! are kept in ten-thousandths so that equal requests are one cache key
//! (`fp:0.25:0.5` and `fp:0.250:0.50` are the same value), and focal points
//! that mean a compass gravity (`fp:0.5:0` is `north`) become it.

use serde::{Deserialize, Serialize};

/// Where a crop is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Gravity {
    /// Keep the middle (the default).
    #[default]
    Center,
    North,
    South,
    East,
    West,
    NorthEast,
    NorthWest,
    SouthEast,
    SouthWest,
    /// The most interesting region (edges, skin tones, saturation), found
    /// on a small copy of the image (see `smart.rs`).
    Smart,
    /// Keep this point, as fractions of the width and height in
    /// ten-thousandths, as close to the middle of the crop as the image
    /// allows.
    Focal(u16, u16),
}

/// The compass spellings with their anchors (fractions of the room left
/// and above the crop: 0 = flush left/top, 1 = flush right/bottom).
const COMPASS: [(&str, Gravity, (u16, u16)); 9] = [
    ("center", Gravity::Center, (5000, 5000)),
    ("north", Gravity::North, (5000, 0)),
    ("south", Gravity::South, (5000, 10000)),
    ("east", Gravity::East, (10000, 5000)),
    ("west", Gravity::West, (0, 5000)),
    ("north-east", Gravity::NorthEast, (10000, 0)),
    ("north-west", Gravity::NorthWest, (0, 0)),
    ("south-east", Gravity::SouthEast, (10000, 10000)),
    ("south-west", Gravity::SouthWest, (0, 10000)),
];

/// What a bad value is told.
pub(crate) const GRAVITY_EXPECTED: &str = "must be one of center, north, south, east, west, north-east, north-west, south-east, south-west, smart, or fp:X:Y with X and Y from 0 to 1";

const ONE: u16 = 10000;

impl Gravity {
    /// Parses the query spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Gravity> {
        if s == "smart" {
            return Some(Gravity::Smart);
        }
        if let Some(&(_, g, _)) = COMPASS.iter().find(|(name, _, _)| *name == s) {
            return Some(g);
        }
        let rest = s.strip_prefix("fp:")?;
        let (x, y) = rest.split_once(':')?;
        Some(Gravity::Focal(fraction(x)?, fraction(y)?).normalized())
    }

    /// A focal point on a compass anchor becomes that gravity (same crop).
    pub fn normalized(self) -> Gravity {
        match self {
            Gravity::Focal(x, y) => COMPASS
                .iter()
                .find(|(_, _, a)| *a == (x, y))
                .map_or(self, |&(_, g, _)| g),
            g => g,
        }
    }

    /// The query spelling (parses back to the same value).
    pub fn to_query(self) -> String {
        match self {
            Gravity::Smart => "smart".into(),
            Gravity::Focal(x, y) => format!("fp:{}:{}", decimal(x), decimal(y)),
            g => COMPASS
                .iter()
                .find(|(_, c, _)| *c == g)
                .map_or("center", |(name, _, _)| name)
                .into(),
        }
    }

    /// For a compass gravity, where the crop sits in the room it has, as
    /// fractions (0 = flush left/top); for a focal point, the point itself.
    /// `None` for `smart`, which needs the pixels.
    pub(crate) fn fractions(self) -> Option<(f64, f64)> {
        let f = |(x, y): (u16, u16)| (f64::from(x) / 1e4, f64::from(y) / 1e4);
        match self {
            Gravity::Smart => None,
            Gravity::Focal(x, y) => Some(f((x, y))),
            g => COMPASS
                .iter()
                .find(|(_, c, _)| *c == g)
                .map(|(_, _, a)| f(*a)),
        }
    }
}

/// A fraction from 0 to 1, at most 8 characters of digits and one dot,
/// rounded to ten-thousandths.
fn fraction(v: &str) -> Option<u16> {
    let f = super::decimal::decimal(v)?;
    (0.0..=1.0)
        .contains(&f)
        .then(|| (f * f64::from(ONE)).round() as u16)
}

fn decimal(v: u16) -> String {
    let s = format!("{}.{:04}", v / ONE, v % ONE);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_and_prints_it_back() {
        for s in [
            "center",
            "north",
            "south",
            "east",
            "west",
            "north-east",
            "north-west",
            "south-east",
            "south-west",
            "smart",
            "fp:0.25:0.75",
            "fp:0:0.3333",
            "fp:1:0.01",
        ] {
            let g = Gravity::parse(s).expect(s);
            assert_eq!(g.to_query(), s);
        }
    }

    #[test]
    fn focal_points_normalise() {
        assert_eq!(Gravity::parse("fp:0.5:0.5"), Some(Gravity::Center));
        assert_eq!(Gravity::parse("fp:0.50:0"), Some(Gravity::North));
        assert_eq!(Gravity::parse("fp:1:1"), Some(Gravity::SouthEast));
        assert_eq!(Gravity::parse("fp:0.250:.5"), Gravity::parse("fp:0.25:0.5"));
        assert_eq!(
            Gravity::parse("fp:0.12345:0"),
            Gravity::parse("fp:0.1235:0")
        );
    }

    #[test]
    fn refuses_bad_values() {
        for s in [
            "",
            "middle",
            "North",
            "fp",
            "fp:",
            "fp:0.5",
            "fp:0.5:",
            "fp:1.1:0",
            "fp:-0:0",
            "fp:nan:0",
            "fp:0:1e0",
            "fp:0:0:0",
            "fp:0.5:0.5 ",
            "fp:.:0",
        ] {
            assert_eq!(Gravity::parse(s), None, "{s}");
        }
    }
}
