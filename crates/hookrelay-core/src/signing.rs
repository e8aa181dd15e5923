//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
//!
//! A secret is `whsec_` followed by the standard (padded) base64 of its key bytes; the HMAC is
//! keyed by those decoded bytes, not by the text. Several secrets (the current one and, during
//! a rotation, the previous one) give several space-separated signatures in one header, and a
//! receiver accepts the request when any of them verifies.
//!
//! Nothing here ever puts a secret, or any part of one, into an error message.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::FieldError;

/// Prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Key bytes in a generated secret.
pub const GENERATED_KEY_BYTES: usize = 32;
/// Fewest key bytes a user-given secret may have.
pub const MIN_KEY_BYTES: usize = 24;
/// Most key bytes a user-given secret may have.
pub const MAX_KEY_BYTES: usize = 64;
/// The signature scheme this module writes (`v1` = HMAC-SHA256).
pub const SCHEME: &str = "v1";

/// The field name used in validation errors.
const FIELD: &str = "signing_secret";

type HmacSha256 = Hmac<Sha256>;

/// Generates a new secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let key: [u8; GENERATED_KEY_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// Checks a user-given secret: `whsec_` + base64 of 24–64 bytes.
///
/// Errors name the field `signing_secret` and say what is wrong, never what was given.
pub fn validate_secret(secret: &str) -> Result<(), FieldError> {
    decode_secret(secret).map(|_| ())
}

/// The key bytes of a secret, or what is wrong with it (without echoing it).
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, FieldError> {
    if secret.is_empty() {
        return Err(FieldError::new(FIELD, "must not be empty"));
    }
    let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err(FieldError::new(
            FIELD,
            format!("must start with {SECRET_PREFIX:?}"),
        ));
    };
    // Standard, padded base64 only: it is what the Standard Webhooks libraries decode, so a
    // secret accepted here is one every receiver can use.
    let key = STANDARD.decode(encoded).map_err(|_| {
        FieldError::new(
            FIELD,
            format!("the part after {SECRET_PREFIX:?} must be standard base64 (with padding)"),
        )
    })?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
        return Err(FieldError::new(
            FIELD,
            format!(
                "must decode to {MIN_KEY_BYTES}–{MAX_KEY_BYTES} bytes, got {}",
                key.len()
            ),
        ));
    }
    Ok(key)
}

/// The MAC over `msg_id.timestamp.body` keyed by `key`.
fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes keys of any length, so this never fails; stay panic-free all the same.
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// One signature, `v1,<base64 HMAC-SHA256>`, of a message signed with `secret`.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> Result<String, FieldError> {
    let key = decode_secret(secret)?;
    let mac = mac(&key, msg_id, timestamp, body)
        .ok_or_else(|| FieldError::new(FIELD, "cannot be used as an HMAC key"))?;
    Ok(format!(
        "{SCHEME},{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header value: one `v1,<sig>` per secret, space-separated.
///
/// Secrets are validated when they are stored, so every one should sign; one that does not
/// (it could only come from a hand-edited record) is left out rather than failing the delivery.
pub fn signature_header(secrets: &[String], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| sign(s, msg_id, timestamp, body).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature in `header` was made with `secret` over this message, compared
/// in constant time. For receivers and tests; the sender never needs it.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(key) = decode_secret(secret) else {
        return false;
    };
    header.split_whitespace().any(|part| {
        let Some(sig) = part
            .strip_prefix(SCHEME)
            .and_then(|rest| rest.strip_prefix(','))
        else {
            return false;
        };
        let Ok(sig) = STANDARD.decode(sig) else {
            return false;
        };
        mac(&key, msg_id, timestamp, body).is_some_and(|m| m.verify_slice(&sig).is_ok())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    /// The published Standard Webhooks test vector.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn spec_test_vector() {
        let sig = sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()).unwrap();
        assert_eq!(sig, SPEC_SIG);
        let header = signature_header(
            &[SPEC_SECRET.to_string()],
            SPEC_ID,
            SPEC_TS,
            SPEC_BODY.as_bytes(),
        );
        assert_eq!(header, SPEC_SIG);
        assert!(verify(
            SPEC_SECRET,
            SPEC_ID,
            SPEC_TS,
            SPEC_BODY.as_bytes(),
            &header
        ));
    }

    #[test]
    fn header_has_one_signature_per_secret_in_order() {
        let other = generate_secret();
        let secrets = [SPEC_SECRET.to_string(), other.clone()];
        let header = signature_header(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], SPEC_SIG);
        assert_eq!(
            parts[1],
            sign(&other, SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()).unwrap()
        );
        // Either secret verifies the two-signature header.
        for s in &secrets {
            assert!(verify(s, SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes(), &header));
        }
    }

    #[test]
    fn verify_rejects_other_messages_and_secrets() {
        let body = SPEC_BODY.as_bytes();
        let cases: [(&str, &str, i64, &[u8], &str); 6] = [
            (SPEC_SECRET, "msg_other", SPEC_TS, body, SPEC_SIG),
            (SPEC_SECRET, SPEC_ID, SPEC_TS + 1, body, SPEC_SIG),
            (SPEC_SECRET, SPEC_ID, SPEC_TS, b"{\"test\": 1}", SPEC_SIG),
            (SPEC_SECRET, SPEC_ID, SPEC_TS, body, "v2,abc"),
            (SPEC_SECRET, SPEC_ID, SPEC_TS, body, "v1,not base64!"),
            (
                "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                SPEC_ID,
                SPEC_TS,
                body,
                SPEC_SIG,
            ),
        ];
        for (secret, id, ts, body, header) in cases {
            assert!(!verify(secret, id, ts, body, header), "{id} {ts} {header}");
        }
    }

    #[test]
    fn invalid_secrets_are_left_out_of_the_header() {
        let secrets = ["nope".to_string(), SPEC_SECRET.to_string()];
        let header = signature_header(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes());
        assert_eq!(header, SPEC_SIG);
        assert_eq!(signature_header(&[], SPEC_ID, SPEC_TS, b""), "");
    }

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        for s in [&a, &b] {
            assert!(s.starts_with(SECRET_PREFIX));
            assert_eq!(decode_secret(s).unwrap().len(), GENERATED_KEY_BYTES);
        }
    }

    /// One validation case: the secret and `None` when valid, or a word the message must hold.
    fn check(secret: &str, expected: Option<&str>) {
        match (validate_secret(secret), expected) {
            (Ok(()), None) => {}
            (Err(e), Some(word)) => {
                assert_eq!(e.field, "signing_secret");
                assert!(e.message.contains(word), "{secret:?}: {}", e.message);
                // The secret itself never appears in the error.
                let body = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
                if body.len() > 3 {
                    assert!(!e.to_string().contains(body), "echoed: {e}");
                }
            }
            (got, want) => panic!("{secret:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn validate_secret_cases() {
        let b64 = |n: usize| STANDARD.encode(vec![7u8; n]);
        check(SPEC_SECRET, None);
        check(&format!("whsec_{}", b64(24)), None);
        check(&format!("whsec_{}", b64(32)), None);
        check(&format!("whsec_{}", b64(64)), None);
        check("", Some("empty"));
        check("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Some("whsec_"));
        check("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Some("whsec_"));
        check("whsec_", Some("got 0"));
        check("whsec_not*base64*at*all*hunter2hunter2", Some("base64"));
        check("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=", Some("base64"));
        check(
            &format!("whsec_{}", b64(32).trim_end_matches('=')),
            Some("base64"),
        );
        check(&format!("whsec_{}", b64(23)), Some("got 23"));
        check(&format!("whsec_{}", b64(65)), Some("got 65"));
        check(&format!("whsec_ {}", b64(32)), Some("base64"));
    }
}
