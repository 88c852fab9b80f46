//! Arithmetic expressions, checked character by character and node by node, then evaluated
//! with `evalexpr` in a context that has no variables and no functions.

use evalexpr::{DefaultNumericTypes, EmptyContext, Node, Operator, Value as ExprValue};
use serde_json::{Value, json};

use super::operation::float_result;
use crate::builtins::ToolError;

/// The deepest parenthesis nesting an expression may use.
pub const MAX_PAREN_DEPTH: usize = 64;

/// The most operators an expression may contain; this bounds the depth of
/// the parsed expression tree whatever the configured length limit is.
pub const MAX_OPERATORS: usize = 512;

/// 2^53: every integer up to this magnitude is exact in an f64.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

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

pub(super) fn evaluate_expression(expression: &str, max_len: usize) -> Result<Value, ToolError> {
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
