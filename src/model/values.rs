//! Bounded numeric values: similarity and confidence on the face service's 0-100 scale, and the
//! timestamps that verdicts, searches and decisions carry.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::ParseError;

macro_rules! percent {
    ($(#[$doc:meta])* $name:ident, $what:literal, $decimals:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
        pub struct $name(f64);

        impl $name {
            /// Parses a value on the 0-100 scale; NaN, infinities and values outside the range are refused.
            pub fn new(value: f64) -> Result<Self, ParseError> {
                if value.is_finite() && (0.0..=100.0).contains(&value) {
                    Ok(Self(value))
                } else {
                    Err(ParseError::new($what, value, "must be a number from 0 to 100"))
                }
            }

            /// The value, from 0 to 100.
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let decimals: fn(f64) -> usize = $decimals;
                write!(f, "{:.*}", decimals(self.0), self.0)
            }
        }

        impl TryFrom<f64> for $name {
            type Error = ParseError;
            fn try_from(v: f64) -> Result<Self, ParseError> {
                Self::new(v)
            }
        }
    };
}

percent!(
    /// How similar two faces are, from 0 to 100, as the face service reports it. Printed with
    /// [`similarity_decimals`] decimals, so that values near 100 do not all read `100.00`.
    Similarity,
    "similarity",
    similarity_decimals
);
percent!(
    /// How sure a classifier is of what it reports, from 0 to 100.
    Confidence,
    "confidence",
    |_| 2
);

/// How many decimals print a value on the 0-100 similarity scale: two, and near 100 as many as
/// show three significant digits of its distance to 100 (at most twelve). Similarities of one
/// person's photos crowd just below 100 (the local engine's median genuine pair is 99.994, and
/// Rekognition's are alike), where two decimals print `100.00` for half of them and hide their order.
pub fn similarity_decimals(value: f64) -> usize {
    let gap = 100.0 - value;
    if !(gap.is_finite() && gap > 0.0) {
        return 2;
    }
    let leading = gap.log10().floor();
    // A gap of 1 or more needs no more than two decimals for three significant digits.
    (2.0 - leading).clamp(2.0, 12.0) as usize
}

/// A point in time, in whole milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Self(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// A timestamp from milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 in UTC with milliseconds, like `2026-11-28T01:02:03.456Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH
        };
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_values_are_bounded() {
        assert_eq!(Similarity::new(97.99).unwrap().to_string(), "97.99");
        assert_eq!(Confidence::new(99.9993).unwrap().to_string(), "100.00");
        assert!(Similarity::new(100.0).is_ok());
        assert!(Similarity::new(0.0).is_ok());
        let err = Similarity::new(100.5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "similarity \"100.5\" is invalid: must be a number from 0 to 100"
        );
        assert!(Confidence::new(-1.0).is_err());
        assert!(Confidence::new(f64::NAN).is_err());
    }

    #[test]
    fn similarities_near_100_print_with_their_order() {
        let shown = |v: f64| Similarity::new(v).unwrap().to_string();
        assert_eq!(shown(80.0), "80.00");
        assert_eq!(shown(98.5), "98.50");
        assert_eq!(shown(99.2), "99.200");
        assert_eq!(shown(99.99361), "99.99361");
        assert_eq!(shown(99.99364), "99.99364");
        assert_eq!(shown(99.9999996197), "99.999999620");
        assert_eq!(shown(100.0), "100.00");
        assert_eq!(shown(0.0), "0.00");
        // Two values a sliver apart near 100 still print apart.
        assert_ne!(shown(99.99999909), shown(99.99999912));
    }

    #[test]
    fn timestamps_print_as_rfc3339() {
        assert_eq!(
            Timestamp::from_millis(1_000).to_string(),
            "1970-01-01T00:00:01.000Z"
        );
    }
}
