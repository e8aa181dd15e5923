//! Validated names and ids, parsed once where they enter (a path segment, a request body, a
//! command-line flag) and carried as their own types from there on, so that code past the
//! edge never sees an unchecked one.
//!
//! Each is a `String` underneath: it derefs to `&str`, prints as itself and is (de)serialised
//! as a plain JSON string. Deserialising validates, so a body or a stored value holding an
//! invalid one is refused with the same message as the field check.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::keys::MAX_PARTITIONS;
use crate::webhook::{validate_label, validate_name};

macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The field that errors about this value name by default.
            pub const FIELD: &'static str = $field;

            /// Validates `value`, naming [`Self::FIELD`] in the error.
            pub fn parse(value: impl Into<String>) -> Result<Self, FieldError> {
                Self::parse_as(Self::FIELD, value)
            }

            /// Validates `value`, naming `field` in the error.
            pub fn parse_as(field: &str, value: impl Into<String>) -> Result<Self, FieldError> {
                let value = value.into();
                $check(field, &value)?;
                Ok(Self(value))
            }

            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value).map_err(|e| NameError(e.message))
            }
        }

        impl std::str::FromStr for $name {
            type Err = FieldError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

/// What is wrong with a value that deserialised into a validated name: the message alone,
/// since the deserialiser names the field (`id: must not be empty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

validated_name!(
    /// A project: 1–64 letters, digits, `-`, `_` and `.`; used in paths and Redis keys.
    ProjectName,
    "project",
    validate_name
);

validated_name!(
    /// A webhook's name within its project, with the rules of [`ProjectName`].
    WebhookName,
    "name",
    validate_name
);

validated_name!(
    /// An event id given by the publisher (1–128 characters, no control characters); it
    /// makes publishing idempotent.
    EventId,
    "id",
    validate_label
);

validated_name!(
    /// A delivery's id: a UUID, or `<partition>.<uuid>` where deliveries are spread over
    /// partitions (the `webhook-id` header). Any 1–200 bytes without `:` or control
    /// characters are taken, so that ids of earlier versions and of other producers still
    /// name their delivery; a `:` could name another kind of key (`<id>:attempts`).
    DeliveryId,
    "id",
    validate_delivery_id
);

impl DeliveryId {
    /// A new id for a delivery in `partition`, or a bare UUID (`None`: one partition on one
    /// Redis, as in earlier versions).
    pub fn generate(partition: Option<u32>) -> Self {
        let uuid = uuid::Uuid::new_v4();
        Self(match partition {
            Some(p) => format!("{p}.{uuid}"),
            None => uuid.to_string(),
        })
    }

    /// The partition the delivery lives in: see [`partition_of`].
    pub fn partition(&self) -> u32 {
        partition_of(&self.0)
    }
}

/// The partition an id names (`<partition>.<uuid>`); ids without one (one partition on one
/// Redis, and earlier versions) are in partition 0. For ids read back from Redis before they
/// are parsed.
pub fn partition_of(id: &str) -> u32 {
    id.split_once('.')
        .and_then(|(p, _)| p.parse::<u32>().ok())
        .filter(|p| *p < MAX_PARTITIONS)
        .unwrap_or(0)
}

/// The longest delivery id taken.
const MAX_DELIVERY_ID_LEN: usize = 200;

/// Validates a delivery id: see [`DeliveryId`].
fn validate_delivery_id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.len() > MAX_DELIVERY_ID_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_DELIVERY_ID_LEN} bytes"),
        ));
    }
    if value.chars().any(|c| c == ':' || c.is_control()) {
        return Err(FieldError::new(
            field,
            "must not contain ':' or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_field() {
        assert_eq!(ProjectName::parse("acme").expect("valid").as_str(), "acme");
        let err = ProjectName::parse("a/b").expect_err("slash");
        assert_eq!(err.field, "project");
        let err = WebhookName::parse_as("webhook", "").expect_err("empty");
        assert_eq!(err.to_string(), "webhook: must not be empty");
        assert!(EventId::parse("evt 1").is_ok());
        assert!(EventId::parse("a\nb").is_err());
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let name = ProjectName::parse("acme").expect("valid");
        assert_eq!(
            serde_json::to_string(&name).expect("serialises"),
            "\"acme\""
        );
        let back: ProjectName = serde_json::from_str("\"acme\"").expect("deserialises");
        assert_eq!(back, name);
        let err = serde_json::from_str::<ProjectName>("\"..\"").expect_err("dot-dot");
        assert!(
            err.to_string().starts_with("must not be '.' or '..'"),
            "{err}"
        );
    }

    #[test]
    fn delivery_ids_name_their_partition() {
        let id = DeliveryId::generate(Some(5));
        assert!(id.starts_with("5."), "{id}");
        assert_eq!(id.partition(), 5);
        let bare = DeliveryId::generate(None);
        assert_eq!(bare.len(), 36, "{bare}");
        assert_eq!(bare.partition(), 0);
        assert_eq!(partition_of("3f0c-11"), 0);
        assert_eq!(partition_of("x.3f0c"), 0);
        assert_eq!(partition_of("99999.3f0c"), 0);
        assert_eq!(partition_of("5.3f0c"), 5);
        assert!(DeliveryId::parse("d1").is_ok());
        for bad in ["", "a:attempts", "a\nb"] {
            let err = DeliveryId::parse(bad).expect_err(bad);
            assert_eq!(err.field, "id");
        }
        assert!(DeliveryId::parse("x".repeat(201)).is_err());
    }

    #[test]
    fn compares_with_strings() {
        let name = WebhookName::parse("w1").expect("valid");
        assert!(name == "w1");
        let owned = String::from("w1");
        assert!(owned == name);
        assert_eq!(&*name, "w1");
    }
}
