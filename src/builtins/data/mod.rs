//! Data transforms: JSON records to CSV and back (`csv`), and nested JSON flattened to one
//! level of joined keys and back (`flatten`).

pub mod csv;
pub mod flatten;

pub use self::csv::{CsvToJson, JsonToCsv};
pub use flatten::{FlattenJson, UnflattenJson};

#[cfg(test)]
mod test_support {
    use serde_json::Value;

    use crate::builtins::{BuiltinLimits, ToolError};

    pub fn limits() -> BuiltinLimits {
        BuiltinLimits::default()
    }

    /// Asserts that `run` gives the same result as without a limit when the output
    /// limit is exactly `size` bytes, and fails naming `what` and `size` one byte below.
    pub fn assert_output_limit(
        run: impl Fn(BuiltinLimits) -> Result<Value, ToolError>,
        size: usize,
        what: &str,
    ) {
        let unlimited = run(limits()).unwrap_or_else(|err| panic!("{what}: {err}"));
        assert_eq!(
            run(with_output_limit(size)),
            Ok(unlimited),
            "{what} at its limit of {size} bytes"
        );
        assert_over_output_limit(run(with_output_limit(size - 1)), size, what, size - 1);
    }

    /// The default limits with an output limit of `max_output_bytes`.
    pub fn with_output_limit(max_output_bytes: usize) -> BuiltinLimits {
        BuiltinLimits {
            max_output_bytes,
            ..limits()
        }
    }

    /// Asserts the error of a result of `size` bytes over the output limit `limit`.
    pub fn assert_over_output_limit(
        result: Result<Value, ToolError>,
        size: usize,
        what: &str,
        limit: usize,
    ) {
        assert_eq!(
            result,
            Err(ToolError::new(format!(
                "{what} would be {size} bytes, more than the output limit of {limit} bytes"
            )))
        );
    }

    pub fn expect_err(result: Result<Value, ToolError>, fragment: &str, context: &str) {
        match result {
            Ok(value) => panic!("{context}: expected an error with {fragment:?}, got {value}"),
            Err(err) => assert!(
                err.message.contains(fragment),
                "{context}: message {:?} lacks {fragment:?}",
                err.message
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::test_support::expect_err;
    use super::*;
    use crate::builtins::{BuiltinLimits, BuiltinTool};

    #[test]
    fn input_size_is_capped() {
        let small = BuiltinLimits {
            max_input_bytes: 64,
            ..BuiltinLimits::default()
        };
        let big_text = "x".repeat(100);
        let tools: [(&dyn BuiltinTool, Value); 4] = [
            (&JsonToCsv::new(small), json!({"data": [{"a": big_text}]})),
            (
                &CsvToJson::new(small),
                json!({"csv": format!("a\n{big_text}\n")}),
            ),
            (&FlattenJson::new(small), json!({"data": {"a": big_text}})),
            (&UnflattenJson::new(small), json!({"data": {"a": big_text}})),
        ];
        for (tool, args) in tools {
            expect_err(tool.execute(&args), "too large", tool.name());
        }
        // Under the limit they work.
        assert!(
            FlattenJson::new(small)
                .execute(&json!({"data": {"a": 1}}))
                .is_ok()
        );
    }
}
