//! Named operations on one or two numbers, exact in integers where the result allows.

use serde_json::{Number, Value, json};

use crate::builtins::{ToolError, args::json_type_name};

pub(super) const OPERATIONS: [&str; 7] = [
    "add", "subtract", "multiply", "divide", "power", "modulo", "sqrt",
];

/// A numeric operand: an exact integer or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

pub(super) fn operand(value: &Value, key: &str) -> Result<Num, ToolError> {
    let Value::Number(number) = value else {
        return Err(ToolError::new(format!(
            "argument '{key}' must be a number, got {}",
            json_type_name(value)
        )));
    };
    if let Some(i) = number.as_i64() {
        return Ok(Num::Int(i));
    }
    match number.as_f64() {
        Some(f) if f.is_finite() => Ok(Num::Float(f)),
        _ => Err(ToolError::new(format!(
            "argument '{key}' is not a finite number"
        ))),
    }
}

/// Turns a finite f64 into a JSON number.
pub(super) fn float_result(value: f64, what: &str) -> Result<Value, ToolError> {
    if value.is_nan() {
        return Err(ToolError::new(format!(
            "the result of {what} is not a number (NaN)"
        )));
    }
    Number::from_f64(value).map(Value::Number).ok_or_else(|| {
        ToolError::new(format!(
            "overflow: the result of {what} is too large for a 64-bit float (beyond ±1.8e308)"
        ))
    })
}

pub(super) fn apply_operation(operation: &str, a: Num, b: Option<Num>) -> Result<Value, ToolError> {
    if operation == "sqrt" {
        return square_root(a);
    }
    if !OPERATIONS.contains(&operation) {
        return Err(ToolError::new(format!(
            "unknown operation '{operation}'; expected one of: {}",
            OPERATIONS.join(", ")
        )));
    }
    let b = b.ok_or_else(|| {
        ToolError::new(format!(
            "operation '{operation}' needs a second operand 'b'"
        ))
    })?;
    let exact = match (a, b) {
        (Num::Int(x), Num::Int(y)) => integer_operation(operation, x, y)?,
        _ => None,
    };
    if let Some(value) = exact {
        return Ok(json!(value));
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    let value = match operation {
        "add" => x + y,
        "subtract" => x - y,
        "multiply" => x * y,
        "divide" => {
            if y == 0.0 {
                return Err(ToolError::new("division by zero"));
            }
            x / y
        }
        "modulo" => {
            if y == 0.0 {
                return Err(ToolError::new("modulo by zero"));
            }
            x % y
        }
        "power" => {
            if x == 0.0 && y < 0.0 {
                return Err(ToolError::new(
                    "division by zero: zero raised to a negative power",
                ));
            }
            if x < 0.0 && y.fract() != 0.0 {
                return Err(ToolError::new(
                    "undefined: a negative number raised to a fractional power has no real value",
                ));
            }
            x.powf(y)
        }
        other => return Err(ToolError::new(format!("unknown operation '{other}'"))),
    };
    float_result(value, &format!("'{operation}'"))
}

/// Exact integer arithmetic. `Ok(None)` means the exact result is not an
/// i64 and the operation should be done in floating point instead.
fn integer_operation(operation: &str, x: i64, y: i64) -> Result<Option<i64>, ToolError> {
    Ok(match operation {
        "add" => x.checked_add(y),
        "subtract" => x.checked_sub(y),
        "multiply" => x.checked_mul(y),
        "divide" => {
            if y == 0 {
                return Err(ToolError::new("division by zero"));
            }
            match x.checked_rem(y) {
                Some(0) => x.checked_div(y),
                _ => None,
            }
        }
        "modulo" => {
            if y == 0 {
                return Err(ToolError::new("modulo by zero"));
            }
            // Only i64::MIN % -1 fails, and its remainder is 0.
            Some(x.checked_rem(y).unwrap_or(0))
        }
        "power" => {
            if y < 0 {
                if x == 0 {
                    return Err(ToolError::new(
                        "division by zero: zero raised to a negative power",
                    ));
                }
                return Ok(None);
            }
            match (x, u32::try_from(y)) {
                (_, Ok(exponent)) => x.checked_pow(exponent),
                (0, Err(_)) => Some(0),
                (1, Err(_)) => Some(1),
                (-1, Err(_)) => Some(if y % 2 == 0 { 1 } else { -1 }),
                _ => None,
            }
        }
        _ => None,
    })
}

fn square_root(a: Num) -> Result<Value, ToolError> {
    let x = a.as_f64();
    if x < 0.0 {
        return Err(ToolError::new(
            "cannot take the square root of a negative number",
        ));
    }
    let root = x.sqrt();
    if let Num::Int(value) = a {
        let candidate = root.round() as i64;
        if candidate.checked_mul(candidate) == Some(value) {
            return Ok(json!(candidate));
        }
    }
    float_result(root, "'sqrt'")
}
