//! Payload formats: data in, bytes out, no IO. One module per target.

use crate::event::Event;
use crate::webhook::{Format, Webhook};

/// Renders the body of a delivery of `event` to `webhook`.
pub fn render(_webhook: &Webhook, _event: &Event) -> String {
    todo!("formats")
}

/// The sample event a webhook test sends for this webhook's format.
pub fn sample_event(_webhook: &Webhook, _project: &str) -> Event {
    todo!("formats")
}

/// For formats whose receivers report failure inside a 2xx body (Bytebase: a non-zero
/// `code`), the error that body carries; `None` when the answer is a success.
pub fn body_error(_format: Format, _body: &[u8]) -> Option<String> {
    None
}
