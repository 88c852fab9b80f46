//! The output budget of the data transforms. Their results can grow with the square of
//! their input (every CSV row repeats the header names as keys, every flattened leaf
//! repeats its whole key path), so they count what a result will hold before building it
//! and refuse one over [`BuiltinLimits::max_output_bytes`](super::BuiltinLimits).

use std::io;

use serde_json::Value;

use super::ToolError;

/// The length of `text` inside a JSON string (without the quotes), as `serde_json`
/// writes it: quotes, backslashes and the common control characters take two bytes
/// (`\"`, `\n`), other control characters six (`\u001f`).
pub fn json_str_len(text: &str) -> usize {
    text.bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// The length of `value` as compact JSON, measured without building the text.
pub fn json_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(flag) => 4 + usize::from(!flag),
        Value::String(text) => 2 + json_str_len(text),
        Value::Number(_) | Value::Array(_) | Value::Object(_) => json_size_up_to(value, usize::MAX),
    }
}

/// The length of `value` as compact JSON, counted up to `limit` (then `limit` is
/// returned): serialization stops there, so a large value is never written out in full.
pub fn json_size_up_to(value: &Value, limit: usize) -> usize {
    struct Counter {
        written: usize,
        limit: usize,
    }
    impl io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written = self.written.saturating_add(buf.len());
            if self.written >= self.limit {
                return Err(io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter { written: 0, limit };
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.written,
        // Writing to the counter fails only at the limit.
        Err(_) => limit,
    }
}

/// The size of a result counted as it is (or would be) built, against a limit.
///
/// Once the count passes the limit a transform stops building and only counts the rest,
/// which costs no more than reading its input, so the error can say how large the result
/// would have been.
#[derive(Debug, Clone, Copy)]
pub struct OutputBudget {
    limit: usize,
    size: usize,
}

impl OutputBudget {
    pub fn new(limit: usize) -> Self {
        Self { limit, size: 0 }
    }

    /// Counts `bytes` more.
    pub fn add(&mut self, bytes: usize) {
        self.size = self.size.saturating_add(bytes);
    }

    /// The count so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the count has passed the limit.
    pub fn exceeded(&self) -> bool {
        self.size > self.limit
    }

    /// Fails when the count has passed the limit; `what` names the result ("the CSV text").
    pub fn check(&self, what: &str) -> Result<(), ToolError> {
        if self.exceeded() {
            Err(ToolError::new(format!(
                "{what} would be {} bytes, more than the output limit of {} bytes",
                self.size, self.limit
            )))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lengths_match_serde_json() {
        let mut texts: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
        texts.extend(
            [
                "",
                "plain",
                "a\"b\\c",
                "tab\there",
                "é東👍",
                "\u{2028}\u{feff}",
            ]
            .map(String::from),
        );
        for text in &texts {
            let written = serde_json::to_string(text).unwrap();
            assert_eq!(json_str_len(text) + 2, written.len(), "{written}");
            assert_eq!(json_len(&json!(text)), written.len(), "{written}");
        }
        for value in [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-12),
            json!(1.5e300),
            json!(u64::MAX),
            json!([]),
            json!({}),
            json!({"a": [1, "x\n", null]}),
        ] {
            assert_eq!(json_len(&value), value.to_string().len(), "{value}");
        }
    }

    #[test]
    fn budget_fails_only_past_its_limit() {
        let mut budget = OutputBudget::new(10);
        budget.add(10);
        assert!(!budget.exceeded());
        budget.check("the result").unwrap();
        budget.add(1);
        assert!(budget.exceeded());
        let err = budget.check("the result").unwrap_err();
        assert_eq!(
            err.message,
            "the result would be 11 bytes, more than the output limit of 10 bytes"
        );
        budget.add(usize::MAX);
        assert!(budget.exceeded());
    }
}
