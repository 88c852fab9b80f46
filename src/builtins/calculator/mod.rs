//! An arithmetic calculator: either one named operation on two numbers, or an
//! arithmetic expression evaluated with `evalexpr` in a context that has no
//! variables and no functions.
//!
//! Integer semantics:
//! - Operations: when both operands are JSON integers (within i64) and the
//!   exact result fits in an i64, the result is a JSON integer; otherwise it
//!   is computed and returned as a 64-bit float. `divide` of integers gives an
//!   integer only when the division is exact (7 / 2 = 3.5). `modulo` keeps the
//!   sign of the dividend (-7 % 3 = -1).
//! - Expressions: every number is evaluated as a 64-bit float (so 7/2 = 3.5).
//!   When all numbers written in the expression are plain integers and the
//!   result is a whole number no larger than 2^53 in magnitude, it is returned
//!   as a JSON integer.
//!
//! Any non-finite value, including an intermediate one, is an error.

mod expression;
mod operation;
#[cfg(test)]
mod tests;

use serde_json::{Value, json};

pub use self::expression::{MAX_OPERATORS, MAX_PAREN_DEPTH};
use self::{
    expression::evaluate_expression,
    operation::{OPERATIONS, apply_operation, operand},
};
use super::{
    BuiltinLimits, BuiltinTool, ToolError,
    args::{object_args, required, required_str},
};

/// The calculator tool.
#[derive(Debug, Clone, Copy)]
pub struct Calculator {
    limits: BuiltinLimits,
}

impl Calculator {
    pub fn new(limits: BuiltinLimits) -> Self {
        Self { limits }
    }
}

impl BuiltinTool for Calculator {
    fn name(&self) -> &'static str {
        "calculator"
    }

    fn description(&self) -> &'static str {
        "Arithmetic calculator. Either apply one operation (add, subtract, multiply, divide, \
         power, modulo, sqrt) to numbers a and b, or evaluate an arithmetic expression such as \
         \"(2+3)*4^2\" with + - * / % ^, parentheses, decimals and scientific notation (1.5e3). \
         Expressions are computed in 64-bit floating point, so 7/2 = 3.5; ^ is \
         left-associative (2^3^2 = 64) and binds tighter than unary minus (-2^2 = -4). \
         Whole-number results of integer inputs are returned as integers. Division or modulo \
         by zero, square roots of negative numbers, overflow, infinity and NaN are reported \
         as errors. Returns {\"result\": number}."
    }

    fn category(&self) -> &'static str {
        "math"
    }

    fn tags(&self) -> &'static [&'static str] {
        &[
            "math",
            "arithmetic",
            "calculator",
            "expression",
            "add",
            "multiply",
            "divide",
            "power",
            "sqrt",
        ]
    }

    fn input_schema(&self) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": "Give either {\"expression\": string} alone, or {\"operation\": name, \"a\": number, \"b\": number} (b is not used by sqrt), never both.",
            "properties": {
                "expression": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": self.limits.max_expression_len,
                    "description": "An arithmetic expression using numbers, + - * / % ^ and parentheses, e.g. \"(2+3)*4^2\". Evaluated in 64-bit floating point."
                },
                "operation": {
                    "type": "string",
                    "enum": OPERATIONS,
                    "description": "The operation to apply to a and b: add, subtract, multiply, divide, power (a^b), modulo (remainder of a/b with the sign of a) or sqrt (square root of a)."
                },
                "a": {
                    "type": "number",
                    "description": "The first operand (the only operand for sqrt)."
                },
                "b": {
                    "type": "number",
                    "description": "The second operand; required for every operation except sqrt."
                }
            },
            // The two shapes are told apart by `execute`, not by root combinators, which
            // model APIs refuse in a function's parameters.
            "required": [],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Option<Value> {
        Some(json!({
            "type": "object",
            "properties": {
                "result": {
                    "type": "number",
                    "description": "The result: an integer when it is exact, otherwise a float."
                }
            },
            "required": ["result"]
        }))
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let map = object_args(args, &["expression", "operation", "a", "b"])?;
        let result = if map.contains_key("expression") {
            if let Some(other) = ["operation", "a", "b"]
                .into_iter()
                .find(|key| map.contains_key(*key))
            {
                return Err(ToolError::new(format!(
                    "give either 'expression' or 'operation' with 'a' and 'b', not both \
                     ('{other}' was given with 'expression')"
                )));
            }
            let expression = required_str(map, "expression")?;
            evaluate_expression(expression, self.limits.max_expression_len)?
        } else if map.contains_key("operation") {
            let operation = required_str(map, "operation")?;
            let a = operand(required(map, "a")?, "a")?;
            let b = match map.get("b") {
                Some(value) => Some(operand(value, "b")?),
                None => None,
            };
            apply_operation(operation, a, b)?
        } else {
            return Err(ToolError::new(
                "missing arguments: give either 'expression' or 'operation' with 'a' and 'b'",
            ));
        };
        Ok(json!({ "result": result }))
    }
}
