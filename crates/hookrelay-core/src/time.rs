//! Time: one type, [`Timestamp`], for every point in time hookrelay keeps or shows.
//!
//! A timestamp is milliseconds since the Unix epoch inside, which is also how Redis keeps it
//! (scores, hash fields). Wherever it is shown or stored as text (API answers, delivered
//! bodies, records kept as JSON) it is RFC 3339 in UTC with milliseconds
//! (`2025-01-21T12:00:00.000Z`), and that is how it (de)serialises.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A point in time, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now.
    pub fn now() -> Self {
        Self(now_ms())
    }

    /// The time `ms` milliseconds after the epoch.
    pub fn from_ms(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub fn as_ms(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (any offset; kept to the millisecond).
    pub fn parse(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Self(t.with_timezone(&Utc).timestamp_millis()))
    }
}

/// Text that is not an RFC 3339 time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 time")]
pub struct TimestampError;

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(text).ok_or(TimestampError)
    }
}

/// RFC 3339 in UTC with milliseconds; empty for a time chrono cannot represent.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => Ok(()),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_rfc3339_utc_with_milliseconds_and_reads_back() {
        let t = Timestamp::from_ms(1_737_460_800_000);
        assert_eq!(t.to_string(), "2025-01-21T12:00:00.000Z");
        assert_eq!(Timestamp::parse("2025-01-21T12:00:00.000Z"), Some(t));
        assert_eq!(Timestamp::parse("2025-01-21T13:00:00+01:00"), Some(t));
        assert_eq!(Timestamp::parse("yesterday"), None);
        let json = serde_json::to_string(&t).expect("serialises");
        assert_eq!(json, "\"2025-01-21T12:00:00.000Z\"");
        let back: Timestamp = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("1737460800000").is_err());
        assert_eq!(Timestamp::from_ms(i64::MAX).to_string(), "");
    }
}
