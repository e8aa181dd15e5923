//! Per-project API tokens: their roles, how a token is generated, and the hash under which
//! it is stored (the token itself is never stored).
//!
//! A token is `hrt_` followed by 43 characters of URL-safe base64 (32 random bytes), so
//! it has 256 bits of entropy: a plain SHA-256 of it cannot be reversed or guessed, and
//! looking it up by that hash takes the same time whatever the token is.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::FieldError;
use crate::time::Timestamp;

/// What a project token may do. Ordered: each role may do everything the one before may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads webhooks (never their secrets), deliveries and tests; changes nothing.
    Viewer,
    /// Also creates, changes and deletes webhooks, publishes events, runs tests,
    /// redelivers and recovers.
    Editor,
    /// Also reads and rotates signing secrets, and manages the project's tokens.
    Admin,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// The name used in the API and in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| FieldError::new("role", "must be one of admin, editor, viewer"))
    }
}

/// Prefix of every generated project token.
pub const TOKEN_PREFIX: &str = "hrt_";

/// A new project token: `hrt_` + URL-safe base64 of 32 random bytes.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The hash a token is stored and looked up under: lower-case hex SHA-256.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A project token as stored in its project's token list: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Unique within its project.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created.
    pub created_at: Timestamp,
    /// [`hash_token`] of the token.
    pub hash: String,
}

/// What a token grants, as stored under its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenGrant {
    /// The one project it reaches.
    pub project: String,
    /// The token's name in that project.
    pub name: String,
    /// What it may do there.
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_order() {
        assert_eq!("viewer".parse::<Role>(), Ok(Role::Viewer));
        assert_eq!("editor".parse::<Role>(), Ok(Role::Editor));
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        let e = "root".parse::<Role>().expect_err("unknown role");
        assert_eq!(e.field, "role");
        assert!(!e.message.contains("root"), "{e}");
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(hash_token(&a).len(), 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
