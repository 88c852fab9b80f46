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

use evalexpr::{DefaultNumericTypes, EmptyContext, Node, Operator, Value as ExprValue};
use serde_json::{Number, Value, json};

use super::builtin::{
    BuiltinLimits, BuiltinTool, ToolError, json_type_name, object_args, required, required_str,
};

/// The deepest parenthesis nesting an expression may use.
pub const MAX_PAREN_DEPTH: usize = 64;

/// The most operators an expression may contain; this bounds the depth of
/// the parsed expression tree whatever the configured length limit is.
pub const MAX_OPERATORS: usize = 512;

/// 2^53: every integer up to this magnitude is exact in an f64.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

const OPERATIONS: [&str; 7] = [
    "add", "subtract", "multiply", "divide", "power", "modulo", "sqrt",
];

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

/// A numeric operand: an exact integer or a float.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
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

fn operand(value: &Value, key: &str) -> Result<Num, ToolError> {
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
fn float_result(value: f64, what: &str) -> Result<Value, ToolError> {
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

fn apply_operation(operation: &str, a: Num, b: Option<Num>) -> Result<Value, ToolError> {
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

/// What the scanner learned about an expression.
struct Scanned {
    /// The expression with every integer literal written as a float literal.
    rewritten: String,
    /// Whether every number in the expression is a plain integer literal.
    all_integer_literals: bool,
}

/// Checks the characters, numbers, parentheses and size of an expression and
/// rewrites integer literals as floats so that evaluation is in floating point.
fn scan_expression(expression: &str) -> Result<Scanned, ToolError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut rewritten = String::with_capacity(expression.len() + 16);
    let mut all_integer_literals = true;
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut saw_number = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_ascii_whitespace() => {
                rewritten.push(' ');
                i += 1;
            }
            '(' => {
                depth += 1;
                if depth > MAX_PAREN_DEPTH {
                    return Err(ToolError::new(format!(
                        "parentheses are nested too deeply (more than {MAX_PAREN_DEPTH} levels)"
                    )));
                }
                rewritten.push(c);
                i += 1;
            }
            ')' => {
                if depth == 0 {
                    return Err(ToolError::new(format!(
                        "unbalanced parentheses: ')' at position {} has no matching '('",
                        i + 1
                    )));
                }
                depth -= 1;
                rewritten.push(c);
                i += 1;
            }
            '+' | '-' | '*' | '/' | '%' | '^' => {
                operators += 1;
                if operators > MAX_OPERATORS {
                    return Err(ToolError::new(format!(
                        "expression has too many operators (more than {MAX_OPERATORS})"
                    )));
                }
                rewritten.push(c);
                i += 1;
            }
            '0'..='9' | '.' | 'e' | 'E' => {
                let start = i;
                while i < chars.len() && matches!(chars[i], '0'..='9' | '.' | 'e' | 'E') {
                    i += 1;
                }
                // An exponent sign: "1e-5" is one number.
                if matches!(chars[i - 1], 'e' | 'E')
                    && i + 1 < chars.len()
                    && matches!(chars[i], '+' | '-')
                    && chars[i + 1].is_ascii_digit()
                {
                    i += 1;
                    while i < chars.len() && matches!(chars[i], '0'..='9' | '.' | 'e' | 'E') {
                        i += 1;
                    }
                }
                let literal: String = chars[start..i].iter().collect();
                let value: f64 = literal.parse().map_err(|_| {
                    ToolError::new(format!(
                        "invalid number '{literal}' at position {} ('e' is only allowed as an \
                         exponent, as in 1.5e3)",
                        start + 1
                    ))
                })?;
                if !value.is_finite() {
                    return Err(ToolError::new(format!(
                        "number '{literal}' is too large for a 64-bit float"
                    )));
                }
                saw_number = true;
                rewritten.push_str(&literal);
                if literal.bytes().all(|b| b.is_ascii_digit()) {
                    rewritten.push_str(".0");
                } else {
                    all_integer_literals = false;
                }
            }
            _ => {
                return Err(ToolError::new(format!(
                    "invalid character {c:?} at position {} in expression; only digits, \
                     whitespace, '.', 'e', 'E', + - * / % ^ and parentheses are allowed",
                    i + 1
                )));
            }
        }
    }
    if depth > 0 {
        return Err(ToolError::new(format!(
            "unbalanced parentheses: {depth} '(' not closed"
        )));
    }
    if !saw_number {
        return Err(ToolError::new("expression contains no numbers"));
    }
    Ok(Scanned {
        rewritten,
        all_integer_literals,
    })
}

fn evaluate_expression(expression: &str, max_len: usize) -> Result<Value, ToolError> {
    let length = expression.chars().count();
    if length > max_len {
        return Err(ToolError::new(format!(
            "expression is too long: {length} characters (limit {max_len})"
        )));
    }
    if expression.trim().is_empty() {
        return Err(ToolError::new("expression is empty"));
    }
    let scanned = scan_expression(expression)?;
    let tree = evalexpr::build_operator_tree::<DefaultNumericTypes>(&scanned.rewritten)
        .map_err(|err| ToolError::new(format!("invalid expression: {err}")))?;
    check_tree(&tree)?;
    let value = evaluate_checked(&tree)?;
    if scanned.all_integer_literals && value.fract() == 0.0 && value.abs() <= MAX_EXACT_FLOAT_INT {
        // Exact: the value is a whole number within the range where f64 is exact.
        return Ok(json!(value as i64));
    }
    float_result(value, "the expression")
}

/// Rejects any construct other than numbers and arithmetic, as a second line of
/// defence after the character check.
fn check_tree(root: &Node<DefaultNumericTypes>) -> Result<(), ToolError> {
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        match node.operator() {
            Operator::RootNode
            | Operator::Add
            | Operator::Sub
            | Operator::Neg
            | Operator::Mul
            | Operator::Div
            | Operator::Mod
            | Operator::Exp => {}
            Operator::Const {
                value: ExprValue::Float(_) | ExprValue::Int(_),
            } => {}
            other => {
                return Err(ToolError::new(format!(
                    "unsupported construct in expression: {other}"
                )));
            }
        }
        stack.extend(node.children());
    }
    Ok(())
}

fn eval_node(node: &Node<DefaultNumericTypes>) -> Result<Option<f64>, ToolError> {
    let context = EmptyContext::<DefaultNumericTypes>::default();
    match node.eval_with_context(&context) {
        Ok(ExprValue::Float(value)) => Ok(Some(value)),
        Ok(ExprValue::Int(value)) => Ok(Some(value as f64)),
        Ok(ExprValue::Empty) => Ok(None),
        Ok(other) => Err(ToolError::new(format!(
            "expression does not evaluate to a number (got {other})"
        ))),
        Err(err) => Err(ToolError::new(format!("invalid expression: {err}"))),
    }
}

/// Evaluates the tree with evalexpr, checking every sub-expression in
/// post-order, so an intermediate infinity or NaN is reported with its cause
/// even when later operations would hide it (as in 1/(1/0)).
fn evaluate_checked(root: &Node<DefaultNumericTypes>) -> Result<f64, ToolError> {
    let mut stack: Vec<(&Node<DefaultNumericTypes>, bool)> = vec![(root, false)];
    while let Some((node, children_done)) = stack.pop() {
        if matches!(node.operator(), Operator::Const { .. }) {
            continue;
        }
        if !children_done {
            stack.push((node, true));
            stack.extend(node.children().iter().map(|child| (child, false)));
            continue;
        }
        match eval_node(node)? {
            Some(value) if !value.is_finite() => return Err(diagnose(node)),
            _ => {}
        }
    }
    match eval_node(root)? {
        Some(value) => Ok(value),
        None => Err(ToolError::new(
            "expression does not evaluate to a number (empty parentheses?)",
        )),
    }
}

/// Explains why a node whose children are all finite produced a non-finite value.
fn diagnose(node: &Node<DefaultNumericTypes>) -> ToolError {
    let operands: Vec<f64> = node
        .children()
        .iter()
        .filter_map(|child| eval_node(child).ok().flatten())
        .collect();
    let overflow = |symbol: &str| {
        ToolError::new(format!(
            "overflow: an intermediate result of '{symbol}' is too large for a 64-bit float \
             (beyond ±1.8e308)"
        ))
    };
    match (node.operator(), operands.as_slice()) {
        (Operator::Div, [_, divisor]) if *divisor == 0.0 => ToolError::new("division by zero"),
        (Operator::Div, _) => overflow("/"),
        (Operator::Mod, [_, divisor]) if *divisor == 0.0 => ToolError::new("modulo by zero"),
        (Operator::Exp, [base, exponent]) if *base == 0.0 && *exponent < 0.0 => {
            ToolError::new("division by zero: zero raised to a negative power")
        }
        (Operator::Exp, [base, exponent]) if *base < 0.0 && exponent.fract() != 0.0 => {
            ToolError::new(
                "undefined: a negative number raised to a fractional power has no real value",
            )
        }
        (Operator::Exp, _) => overflow("^"),
        (Operator::Add, _) => overflow("+"),
        (Operator::Sub, _) => overflow("-"),
        (Operator::Mul, _) => overflow("*"),
        (Operator::Neg, _) => overflow("-"),
        _ => ToolError::new("the expression has no finite value"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc() -> Calculator {
        Calculator::new(BuiltinLimits::default())
    }

    enum Expect {
        Int(i64),
        Float(f64),
        Err(&'static str),
    }

    fn check(args: Value, expected: Expect) {
        let got = calc().execute(&args);
        match expected {
            Expect::Int(want) => {
                let result = &got.unwrap_or_else(|err| panic!("{args}: {err}"))["result"];
                assert!(result.is_i64(), "{args}: expected an integer, got {result}");
                assert_eq!(result.as_i64(), Some(want), "{args}");
            }
            Expect::Float(want) => {
                let result = &got.unwrap_or_else(|err| panic!("{args}: {err}"))["result"];
                assert!(result.is_f64(), "{args}: expected a float, got {result}");
                let value = result.as_f64().expect("float");
                let tolerance = 1e-12 * want.abs().max(1.0);
                assert!(
                    (value - want).abs() <= tolerance,
                    "{args}: {value} != {want}"
                );
            }
            Expect::Err(fragment) => {
                let err = got.expect_err(&format!("{args} should fail"));
                assert!(
                    err.message.contains(fragment),
                    "{args}: message {:?} lacks {fragment:?}",
                    err.message
                );
            }
        }
    }

    fn op(operation: &str, a: Value, b: Value) -> Value {
        json!({"operation": operation, "a": a, "b": b})
    }

    #[test]
    fn operations() {
        use Expect::*;
        let cases = [
            (op("add", json!(2), json!(3)), Int(5)),
            (op("add", json!(-2), json!(3)), Int(1)),
            (op("add", json!(2.5), json!(3)), Float(5.5)),
            (
                op("add", json!(0.1), json!(0.2)),
                Float(0.30000000000000004),
            ),
            (op("subtract", json!(2), json!(5)), Int(-3)),
            (op("multiply", json!(6), json!(7)), Int(42)),
            (op("multiply", json!(1.5), json!(2)), Float(3.0)),
            (op("divide", json!(8), json!(2)), Int(4)),
            (op("divide", json!(7), json!(2)), Float(3.5)),
            (op("divide", json!(-9), json!(3)), Int(-3)),
            (op("divide", json!(1.0), json!(4)), Float(0.25)),
            (op("modulo", json!(7), json!(3)), Int(1)),
            (op("modulo", json!(-7), json!(3)), Int(-1)),
            (op("modulo", json!(7.5), json!(2)), Float(1.5)),
            (op("modulo", json!(i64::MIN), json!(-1)), Int(0)),
            (op("power", json!(2), json!(10)), Int(1024)),
            (op("power", json!(2), json!(-1)), Float(0.5)),
            (
                op("power", json!(2), json!(0.5)),
                Float(std::f64::consts::SQRT_2),
            ),
            (op("power", json!(-2), json!(3)), Int(-8)),
            (op("power", json!(0), json!(0)), Int(1)),
            (
                op("power", json!(3), json!(40)),
                Float(12157665459056928801.0),
            ),
            (op("power", json!(-1), json!(i64::MAX)), Int(-1)),
            (op("power", json!(1), json!(i64::MAX)), Int(1)),
            (json!({"operation": "sqrt", "a": 16}), Int(4)),
            (
                json!({"operation": "sqrt", "a": 2}),
                Float(std::f64::consts::SQRT_2),
            ),
            (json!({"operation": "sqrt", "a": 6.25}), Float(2.5)),
            (json!({"operation": "sqrt", "a": 0}), Int(0)),
            (json!({"operation": "sqrt", "a": 16, "b": 99}), Int(4)),
            (
                json!({"operation": "sqrt", "a": 3_037_000_499i64 * 3_037_000_499i64}),
                Int(3_037_000_499),
            ),
            // Results that do not fit in an i64 become floats.
            (op("add", json!(i64::MAX), json!(1)), Float(2f64.powi(63))),
            (
                op("multiply", json!(i64::MAX), json!(2)),
                Float(2f64.powi(64)),
            ),
            (
                op("divide", json!(i64::MIN), json!(-1)),
                Float(2f64.powi(63)),
            ),
            (op("add", json!(u64::MAX), json!(0)), Float(2f64.powi(64))),
            (op("add", json!(1e308), json!(1e308)), Err("overflow")),
            (op("multiply", json!(1e308), json!(10)), Err("overflow")),
            (op("power", json!(2), json!(5000)), Err("overflow")),
            (op("power", json!(10), json!(400.0)), Err("overflow")),
            (op("divide", json!(1), json!(0)), Err("division by zero")),
            (
                op("divide", json!(1.5), json!(0.0)),
                Err("division by zero"),
            ),
            (op("divide", json!(0), json!(0)), Err("division by zero")),
            (op("modulo", json!(1), json!(0)), Err("modulo by zero")),
            (op("modulo", json!(1.5), json!(0.0)), Err("modulo by zero")),
            (op("power", json!(0), json!(-1)), Err("division by zero")),
            (
                op("power", json!(0.0), json!(-0.5)),
                Err("division by zero"),
            ),
            (op("power", json!(-8), json!(0.5)), Err("fractional power")),
            (
                json!({"operation": "sqrt", "a": -1}),
                Err("negative number"),
            ),
            (
                json!({"operation": "sqrt", "a": -0.25}),
                Err("negative number"),
            ),
            (
                json!({"operation": "add", "a": 1}),
                Err("needs a second operand 'b'"),
            ),
            (
                json!({"operation": "sqrt"}),
                Err("missing required argument 'a'"),
            ),
            (
                op("root", json!(1), json!(2)),
                Err("unknown operation 'root'"),
            ),
            (
                op("ADD", json!(1), json!(2)),
                Err("unknown operation 'ADD'"),
            ),
            (
                op("add", json!("1"), json!(2)),
                Err("'a' must be a number, got string"),
            ),
            (
                op("add", json!(1), json!(null)),
                Err("'b' must be a number, got null"),
            ),
            (
                op("add", json!(1), json!([2])),
                Err("'b' must be a number, got array"),
            ),
            (
                json!({"operation": 5, "a": 1, "b": 2}),
                Err("'operation' must be a string"),
            ),
            (json!({"a": 1, "b": 2}), Err("missing arguments")),
            (json!({}), Err("missing arguments")),
            (
                json!({"expression": "1+1", "operation": "add"}),
                Err("not both"),
            ),
            (json!({"expression": "1+1", "a": 1}), Err("not both")),
            (
                json!({"operation": "add", "a": 1, "b": 2, "c": 3}),
                Err("unknown argument 'c'"),
            ),
            (json!([1, 2]), Err("must be a JSON object")),
        ];
        for (args, expected) in cases {
            check(args, expected);
        }
    }

    #[test]
    fn expressions() {
        use Expect::*;
        let long_ok = format!("1{}", "+1".repeat(499));
        let cases = [
            ("(2+3)*4^2", Int(80)),
            ("1 + 2 * 3", Int(7)),
            ("7/2", Float(3.5)),
            ("8/2", Int(4)),
            ("10 % 4", Int(2)),
            ("-7 % 3", Int(-1)),
            ("2^10", Int(1024)),
            ("2^-1", Float(0.5)),
            ("2^3^2", Int(64)),
            ("-2^2", Int(-4)),
            ("(-2)^2", Int(4)),
            ("1 - -1", Int(2)),
            ("-(3)", Int(-3)),
            ("0.1 + 0.2", Float(0.30000000000000004)),
            ("1.0 + 1", Float(2.0)),
            ("1.5e3", Float(1500.0)),
            ("2E2 + 1", Float(201.0)),
            ("1e-3 * 2", Float(0.002)),
            ("1e+2", Float(100.0)),
            (".5 + 5.", Float(5.5)),
            ("  42  ", Int(42)),
            ("\t(1\n+\r2)", Int(3)),
            ("2^53", Int(9_007_199_254_740_992)),
            ("2^53 + 2", Float(9_007_199_254_740_994.0)),
            ("2^60", Float(2f64.powi(60))),
            ("99999999999999999999 * 10", Float(1e21)),
            ("1e308", Float(1e308)),
            ("0 * 5", Int(0)),
            (long_ok.as_str(), Int(500)),
            ("1/0", Err("division by zero")),
            ("0/0", Err("division by zero")),
            ("5 % 0", Err("modulo by zero")),
            ("1/(1/0)", Err("division by zero")),
            ("0^-1", Err("division by zero")),
            ("2^1000 * 2^1000", Err("overflow")),
            ("2^1024", Err("overflow")),
            ("1e308*10", Err("overflow")),
            ("-1e308*10", Err("overflow")),
            ("1e308*10 - 1e308*10", Err("overflow")),
            ("1e309", Err("too large")),
            ("(-8)^(1/3)", Err("fractional power")),
            ("((((", Err("unbalanced parentheses")),
            ("(1+2", Err("unbalanced parentheses")),
            ("1+2)", Err("unbalanced parentheses: ')' at position 4")),
            (")(", Err("unbalanced parentheses")),
            ("", Err("expression is empty")),
            ("   ", Err("expression is empty")),
            ("()", Err("contains no numbers")),
            ("(1)()", Err("invalid expression")),
            ("+", Err("contains no numbers")),
            ("2 +", Err("invalid expression")),
            ("* 2", Err("invalid expression")),
            ("2 3", Err("invalid expression")),
            ("(2)(3)", Err("invalid expression")),
            ("1..2", Err("invalid number '1..2'")),
            ("1.2.3", Err("invalid number")),
            ("e", Err("invalid number 'e'")),
            ("2e", Err("invalid number '2e'")),
            ("1e5e5", Err("invalid number")),
            ("2 e5", Err("invalid number 'e5'")),
            ("1e-", Err("invalid number")),
            ("abc", Err("invalid character 'a' at position 1")),
            ("2 + x", Err("invalid character 'x' at position 5")),
            ("pi", Err("invalid character 'p'")),
            ("sqrt(4)", Err("invalid character 's'")),
            ("a = 1", Err("invalid character 'a'")),
            ("1 == 1", Err("invalid character '='")),
            ("1, 2", Err("invalid character ','")),
            ("1; 2", Err("invalid character ';'")),
            ("\"str\"", Err("invalid character '\"'")),
            ("true", Err("invalid character 't'")),
            ("2 × 3", Err("invalid character '×'")),
            ("1\u{a0}+ 1", Err("invalid character '\\u{a0}'")),
            ("0x10", Err("invalid character 'x'")),
        ];
        for (expression, expected) in cases {
            check(json!({ "expression": expression }), expected);
        }
    }

    #[test]
    fn nesting_and_length_limits() {
        use Expect::*;
        let nested = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        let negations = |n: usize| format!("{}1", "-".repeat(n));
        let cases = [
            (nested(64), Int(1)),
            (nested(65), Err("nested too deeply")),
            (nested(10_000), Err("too long")),
            (negations(512), Int(1)),
            (negations(513), Err("too many operators")),
            // A 1000-digit number is within the length limit but not a finite float.
            ("1".repeat(1000), Err("too large for a 64-bit float")),
            (
                "1".repeat(1001),
                Err("too long: 1001 characters (limit 1000)"),
            ),
            (format!("{}1", " ".repeat(999)), Int(1)),
        ];
        for (expression, expected) in cases {
            check(json!({ "expression": expression }), expected);
        }
    }

    #[test]
    fn worst_case_expressions_do_not_overflow_the_stack() {
        // A big configured length only meets the operator and nesting caps.
        let calculator = Calculator::new(BuiltinLimits {
            max_expression_len: 100_000,
            ..BuiltinLimits::default()
        });
        let shapes = [
            format!("{}1", "-".repeat(MAX_OPERATORS)),
            format!(
                "{}1{}",
                "-(".repeat(MAX_PAREN_DEPTH),
                ")".repeat(MAX_PAREN_DEPTH)
            ),
            format!(
                "{}{}1{}",
                "(".repeat(MAX_PAREN_DEPTH),
                "-".repeat(MAX_OPERATORS),
                ")".repeat(MAX_PAREN_DEPTH)
            ),
            format!("1{}", "^1".repeat(MAX_OPERATORS)),
            format!("1{}", "+1".repeat(MAX_OPERATORS)),
        ];
        for expression in shapes {
            // Test threads have a 2 MiB stack, like most runtime worker threads.
            let result = calculator.execute(&json!({ "expression": expression }));
            assert!(result.is_ok(), "{expression}: {result:?}");
        }
        let too_many = format!("{}1", "-".repeat(MAX_OPERATORS * 10));
        let err = calculator
            .execute(&json!({ "expression": too_many }))
            .expect_err("too many operators");
        assert!(
            err.message.contains("too many operators"),
            "{}",
            err.message
        );
    }

    #[test]
    fn custom_expression_length_limit() {
        let calculator = Calculator::new(BuiltinLimits {
            max_expression_len: 5,
            ..BuiltinLimits::default()
        });
        let ok = calculator.execute(&json!({"expression": "12345"}));
        assert_eq!(ok, Ok(json!({"result": 12345})));
        let err = calculator
            .execute(&json!({"expression": "1+2+3"}))
            .map(|value| value["result"].clone());
        assert_eq!(err, Ok(json!(6)));
        let err = calculator
            .execute(&json!({"expression": "1 + 2 "}))
            .expect_err("six characters");
        assert_eq!(
            err.message,
            "expression is too long: 6 characters (limit 5)"
        );
    }

    #[test]
    fn expression_argument_types() {
        use Expect::*;
        let cases = [
            (
                json!({"expression": 5}),
                Err("'expression' must be a string, got number"),
            ),
            (
                json!({"expression": null}),
                Err("'expression' must be a string, got null"),
            ),
            (
                json!({"expression": ["1+1"]}),
                Err("must be a string, got array"),
            ),
        ];
        for (args, expected) in cases {
            check(args, expected);
        }
    }

    #[test]
    fn schema_describes_both_shapes_without_combinators() {
        let schema = calc().input_schema();
        assert!(schema.get("oneOf").is_none());
        let description = schema["description"].as_str().unwrap();
        assert!(description.contains("expression") && description.contains("operation"));
        assert_eq!(
            schema["properties"]["operation"]["enum"],
            json!([
                "add", "subtract", "multiply", "divide", "power", "modulo", "sqrt"
            ])
        );
        assert_eq!(schema["properties"]["expression"]["maxLength"], json!(1000));
    }
}
