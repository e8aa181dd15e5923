//! `signing`: validating any secret never panics and never echoes it; every secret that
//! validates signs, and its signature verifies, alone or beside other secrets; verifying any
//! header never panics.
//!
//! Input: two header bytes, then fields separated by `0xFF`:
//!
//! | header byte | meaning |
//! | --- | --- |
//! | 0 | bit 0: the first secret is `whsec_` + base64 of the first field's bytes (repeated to the length byte 1 picks), so most inputs give a valid secret; else it is the field's text |
//! | 1 | key length, `24 + byte % 41` bytes (24–64, the accepted range) |
//!
//! Fields, in order: first secret (or key bytes), second secret (text), message id,
//! timestamp (decimal; anything else reads the field's first 8 bytes as a little-endian
//! integer), a signature header to verify, and last, everything left, the body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hookrelay_core::signing::{
    MAX_KEY_BYTES, MIN_KEY_BYTES, SCHEME, SECRET_PREFIX, decode_secret, sign, signature_header,
    validate_secret, verify,
};

use crate::input::Input;

/// Checks one fuzz input.
pub fn check(data: &[u8]) {
    let mut input = Input::<2>::new(data);
    let first = if input.flag(0, 0) {
        let key_len =
            MIN_KEY_BYTES + usize::from(input.header[1]) % (MAX_KEY_BYTES - MIN_KEY_BYTES + 1);
        let key: Vec<u8> = input
            .bytes()
            .iter()
            .copied()
            .cycle()
            .take(key_len)
            .collect();
        format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
    } else {
        input.text()
    };
    let second = input.text();
    let msg_id = input.text();
    let timestamp = timestamp(input.bytes());
    let header_to_verify = input.text();
    let body = input.rest();

    let secrets = [first, second];
    let mut valid = Vec::new();
    for secret in &secrets {
        if check_secret(secret, &msg_id, timestamp, &body, &header_to_verify) {
            valid.push(secret);
        }
    }

    // Several secrets: one signature per valid secret, and each of them verifies the header.
    let header = signature_header(&secrets, &msg_id, timestamp, &body);
    let signatures = header.split(' ').filter(|s| !s.is_empty()).count();
    assert_eq!(
        signatures,
        valid.len(),
        "header {header:?} has {signatures} signatures for {} valid secrets",
        valid.len()
    );
    for secret in valid {
        assert!(
            verify(secret, &msg_id, timestamp, &body, &header),
            "a valid secret does not verify the two-secret header"
        );
    }
}

/// Checks one secret; returns whether it is valid.
fn check_secret(secret: &str, msg_id: &str, timestamp: i64, body: &[u8], other: &str) -> bool {
    // Any header, valid secret or not: no panic, whatever the answer.
    let _ = verify(secret, msg_id, timestamp, body, other);

    if let Err(e) = validate_secret(secret) {
        assert_eq!(e.field, "signing_secret", "error names another field");
        assert_no_echo(secret, &e.to_string());
        assert!(
            decode_secret(secret).is_err(),
            "decode accepts what validate refuses"
        );
        match sign(secret, msg_id, timestamp, body) {
            Ok(_) => panic!("an invalid secret signed"),
            Err(e) => assert_no_echo(secret, &e.to_string()),
        }
        assert_eq!(
            signature_header(&[secret.to_string()], msg_id, timestamp, body),
            "",
            "an invalid secret signed the header"
        );
        return false;
    }

    let key = match decode_secret(secret) {
        Ok(key) => key,
        Err(e) => panic!("validate accepts what decode refuses: {e}"),
    };
    assert!(
        (MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()),
        "a key of {} bytes validated",
        key.len()
    );
    let signature = match sign(secret, msg_id, timestamp, body) {
        Ok(signature) => signature,
        Err(e) => panic!("a valid secret does not sign: {e}"),
    };
    assert!(
        signature.starts_with(&format!("{SCHEME},")),
        "signature {signature:?} without the scheme"
    );
    let header = signature_header(&[secret.to_string()], msg_id, timestamp, body);
    assert_eq!(
        header, signature,
        "one-secret header differs from the signature"
    );
    assert!(
        verify(secret, msg_id, timestamp, body, &header),
        "a signature does not verify"
    );
    // The timestamp is part of what is signed, so another one must not verify.
    assert!(
        !verify(secret, msg_id, timestamp.wrapping_add(1), body, &header),
        "a signature verifies for another timestamp"
    );
    true
}

/// Fails when an error message holds the part of `secret` after its prefix. Only parts of
/// 32 characters or more without a space are checked: a real key is that long and has no
/// space, while any 32-character stretch of the module's fixed wording has one, so the check
/// cannot trip on a secret that happens to spell part of the message.
fn assert_no_echo(secret: &str, message: &str) {
    let part = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    if part.chars().count() >= 32 && !part.contains(' ') {
        assert!(
            !message.contains(part),
            "error echoes the secret: {message}"
        );
    }
}

/// A timestamp from a field: its decimal value, else its first 8 bytes as a little-endian
/// integer (so extreme values such as `i64::MIN` are reached too).
fn timestamp(field: &[u8]) -> i64 {
    if let Some(n) = std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        return n;
    }
    let mut bytes = [0u8; 8];
    let taken = field.len().min(8);
    bytes[..taken].copy_from_slice(&field[..taken]);
    i64::from_le_bytes(bytes)
}
