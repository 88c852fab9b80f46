//! The calculator's expression parser and evaluator on arbitrary text.
//!
//! Checks: it never panics, answers the same way twice, and a success is
//! `{"result": number}` with a finite number that follows the documented
//! integer rule (an integer only when every literal is a plain integer and the
//! value is whole and within ±2^53; otherwise a float); expressions that are
//! too long or use characters outside the documented set are errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tool_registry_fuzz::{calculator, limits, run};

/// 2^53: the documented bound for integer results.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

fn allowed(c: char) -> bool {
    c.is_ascii_whitespace() || c.is_ascii_digit() || "().eE+-*/%^".contains(c)
}

fuzz_target!(|data: &[u8]| {
    let expression = String::from_utf8_lossy(data);
    let args = json!({ "expression": expression });
    let tool = calculator();
    let first = run(&tool, &args, "result");
    let second = run(&tool, &args, "result");
    assert_eq!(first, second, "two runs disagree for {expression:?}");

    let max_len = limits().max_expression_len;
    let length = expression.chars().count();
    match first {
        Ok(result) => {
            assert!(
                length <= max_len,
                "{length} characters accepted (limit {max_len})"
            );
            assert!(
                expression.chars().all(allowed),
                "{expression:?} has a character outside the documented set but gave {result}"
            );
            assert!(
                !expression.trim().is_empty(),
                "empty expression gave {result}"
            );
            let Value::Number(number) = &result else {
                panic!("{expression:?}: result {result} is not a number");
            };
            let value = number.as_f64().expect("a JSON number has an f64 value");
            assert!(
                value.is_finite(),
                "{expression:?}: result {value} is not finite"
            );
            let integer_literals_only = !expression.contains(['.', 'e', 'E']);
            if number.is_f64() {
                assert!(
                    !integer_literals_only
                        || value.fract() != 0.0
                        || value.abs() > MAX_EXACT_FLOAT_INT,
                    "{expression:?}: whole result {value} of integer literals is not an integer"
                );
            } else {
                assert!(
                    integer_literals_only,
                    "{expression:?}: integer result {number} although a literal is not an integer"
                );
                assert!(
                    value.abs() <= MAX_EXACT_FLOAT_INT,
                    "{expression:?}: integer result {number} beyond 2^53"
                );
            }
        }
        Err(err) => {
            if length > max_len {
                assert!(
                    err.message.contains("too long"),
                    "{length} characters: error {:?} does not say it is too long",
                    err.message
                );
            }
        }
    }
});
