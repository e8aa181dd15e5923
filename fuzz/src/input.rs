//! Cutting a fuzz input into header bytes and `0xFF`-separated fields.

use serde_json::Value;

/// The byte that separates fields: it never occurs in UTF-8 text.
pub const SEPARATOR: u8 = 0xFF;

/// A fuzz input: `N` header bytes, then fields separated by [`SEPARATOR`].
///
/// Missing header bytes read as zero and missing fields as empty, so every input, even an
/// empty one, gives a value for everything a check asks for.
pub struct Input<'a, const N: usize> {
    /// The header bytes (flags and small numbers).
    pub header: [u8; N],
    fields: std::slice::Split<'a, u8, fn(&u8) -> bool>,
}

impl<'a, const N: usize> Input<'a, N> {
    /// Splits `data` into its header and fields.
    pub fn new(data: &'a [u8]) -> Self {
        let mut header = [0u8; N];
        let taken = data.len().min(N);
        header[..taken].copy_from_slice(&data[..taken]);
        let is_separator: fn(&u8) -> bool = |b| *b == SEPARATOR;
        Self {
            header,
            fields: data[taken..].split(is_separator),
        }
    }

    /// Whether bit `bit` of header byte `byte` is set.
    pub fn flag(&self, byte: usize, bit: u8) -> bool {
        self.header.get(byte).is_some_and(|b| b & (1 << bit) != 0)
    }

    /// The next field's bytes; empty once the fields run out.
    pub fn bytes(&mut self) -> &'a [u8] {
        self.fields.next().unwrap_or(&[])
    }

    /// The next field as text (invalid UTF-8 replaced); empty once the fields run out.
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// Everything after the fields read so far, separators included, as one field.
    pub fn rest(&mut self) -> Vec<u8> {
        let parts: Vec<&[u8]> = self.fields.by_ref().collect();
        parts.join(&SEPARATOR)
    }
}

/// A field as JSON: the document when the bytes are one, else the text as a JSON string.
pub fn json_or_string(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_header_and_fields() {
        let mut input = Input::<2>::new(b"\x01\x80a\xffb\xff\xffc\xffd");
        assert!(input.flag(0, 0));
        assert!(!input.flag(0, 1));
        assert!(input.flag(1, 7));
        assert_eq!(input.text(), "a");
        assert_eq!(input.bytes(), b"b");
        assert_eq!(input.text(), "");
        assert_eq!(input.rest(), b"c\xffd");
        assert_eq!(input.text(), "");
    }

    #[test]
    fn short_inputs_read_as_zeros_and_empties() {
        let mut input = Input::<3>::new(b"\x05");
        assert_eq!(input.header, [5, 0, 0]);
        assert_eq!(input.bytes(), b"");
        assert_eq!(input.text(), "");
        assert!(!input.flag(7, 0));
    }

    #[test]
    fn json_or_string_cases() {
        assert_eq!(json_or_string(b"{\"a\":1}"), serde_json::json!({"a": 1}));
        assert_eq!(json_or_string(b"12"), serde_json::json!(12));
        assert_eq!(json_or_string(b"not json"), serde_json::json!("not json"));
        assert_eq!(json_or_string(b""), serde_json::json!(""));
    }
}
