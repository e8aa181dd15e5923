//! Standard Webhooks signing: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.

use crate::error::FieldError;

/// Generates a new secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    todo!("signing")
}

/// Checks a user-given secret: `whsec_` + base64 of 24–64 bytes.
pub fn validate_secret(_secret: &str) -> Result<(), FieldError> {
    todo!("signing")
}

/// The `webhook-signature` header value: one `v1,<sig>` per secret, space-separated.
pub fn signature_header(
    _secrets: &[String],
    _msg_id: &str,
    _timestamp: i64,
    _body: &[u8],
) -> String {
    todo!("signing")
}
