//! The calculator against a reference: random arithmetic trees are written out
//! as expressions following the documented grammar (standard precedence, `^`
//! left-associative and binding tighter than unary minus, `%` keeping the sign
//! of the dividend), with random spacing, redundant parentheses and every
//! documented literal form (1, 1.5, .5, 5., 1.5e3, 2E2, 1e-3, 1e+2).
//!
//! Checks: the calculator returns exactly the value of evaluating the tree in
//! 64-bit floating point (bit for bit), as an integer exactly when the
//! documented rule says so; it fails, with a reason about the arithmetic, when
//! an intermediate value is infinite or NaN; and it fails when the expression
//! is over the length, nesting or operator limits.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tool_registry::builtins::calculator::{MAX_OPERATORS, MAX_PAREN_DEPTH};
use tool_registry_fuzz::{calculator, limits, run, sometimes};

const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl Op {
    const ALL: [Op; 6] = [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Mod, Op::Pow];

    fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
            Op::Mod => '%',
            Op::Pow => '^',
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Op::Add | Op::Sub => 1,
            Op::Mul | Op::Div | Op::Mod => 2,
            Op::Pow => 4,
        }
    }

    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
            Op::Mod => a % b,
            Op::Pow => a.powf(b),
        }
    }
}

/// Unary minus binds tighter than * / % and looser than ^.
const NEG_PRECEDENCE: u8 = 3;
const LITERAL_PRECEDENCE: u8 = 9;

#[derive(Debug)]
enum Expr {
    Literal(String),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
}

impl Expr {
    fn precedence(&self) -> u8 {
        match self {
            Expr::Literal(_) => LITERAL_PRECEDENCE,
            Expr::Neg(_) => NEG_PRECEDENCE,
            Expr::Binary(op, _, _) => op.precedence(),
        }
    }

    /// The value in f64, or `None` when any intermediate value is not finite.
    fn eval(&self) -> Option<f64> {
        let value = match self {
            Expr::Literal(text) => text.parse::<f64>().expect("generated literal parses"),
            Expr::Neg(inner) => -inner.eval()?,
            Expr::Binary(op, a, b) => op.apply(a.eval()?, b.eval()?),
        };
        value.is_finite().then_some(value)
    }

    fn all_integer_literals(&self) -> bool {
        match self {
            Expr::Literal(text) => text.bytes().all(|b| b.is_ascii_digit()),
            Expr::Neg(inner) => inner.all_integer_literals(),
            Expr::Binary(_, a, b) => a.all_integer_literals() && b.all_integer_literals(),
        }
    }
}

fn literal(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=6)? {
        0 => u.int_in_range(0u32..=20)?.to_string(),
        1 => u.arbitrary::<u64>()?.to_string(),
        2 => {
            // Up to 25 digits: beyond u64, still a finite float.
            let len = u.int_in_range(1..=25)?;
            let mut digits = String::new();
            for _ in 0..len {
                digits.push(char::from(b'0' + u.int_in_range(0..=9)?));
            }
            digits
        }
        3 => {
            let value = u.arbitrary::<f64>()?.abs();
            let value = if value.is_finite() { value } else { 1.5 };
            let mut text = format!("{value:e}");
            if u.arbitrary()? {
                text = text.replace('e', "E");
            }
            if u.arbitrary()? && !text.contains("e-") && !text.contains("E-") {
                text = text.replacen('e', "e+", 1).replacen('E', "E+", 1);
            }
            text
        }
        4 => {
            let value = u.arbitrary::<f64>()?.abs();
            let text = value.to_string();
            if value.is_finite() && text.len() <= 24 {
                text
            } else {
                "0.1".to_string()
            }
        }
        _ => (*u.choose(&[
            "0", "1", "2", "3", "7", "10", "0.1", "0.2", "0.5", ".5", "5.", "1.5", "1e3", "2E2",
            "1e-3", "1e+2", "1E-2", "1.5e3", "1e308", "2.5e-308", "4.9e-324", "00", "007",
        ])?)
        .to_string(),
    })
}

fn expr(u: &mut Unstructured, depth: usize) -> Result<Expr> {
    if depth == 0 || u.ratio(1, 4)? {
        return Ok(Expr::Literal(literal(u)?));
    }
    let choice = u.int_in_range(0..=Op::ALL.len())?;
    if choice == Op::ALL.len() {
        return Ok(Expr::Neg(Box::new(expr(u, depth - 1)?)));
    }
    let left = expr(u, depth - 1)?;
    let right = expr(u, depth - 1)?;
    Ok(Expr::Binary(
        Op::ALL[choice],
        Box::new(left),
        Box::new(right),
    ))
}

struct Writer<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    out: String,
    depth: usize,
    max_depth: usize,
    operators: usize,
}

impl Writer<'_, '_> {
    fn space(&mut self) -> Result<()> {
        if sometimes(self.u, 3)? {
            let ws = *self.u.choose(&[" ", " ", "  ", "\t", "\n", "\r\n"])?;
            self.out.push_str(ws);
        }
        Ok(())
    }

    fn operator(&mut self, c: char) -> Result<()> {
        self.space()?;
        self.out.push(c);
        self.operators += 1;
        self.space()
    }

    /// Writes `e`, in parentheses when `parens` or (sometimes) for no reason.
    /// `before_pow`: the text written next is `^` applying to what `e` ends in.
    fn write(&mut self, e: &Expr, parens: bool, before_pow: bool) -> Result<()> {
        let parens = parens || sometimes(self.u, 10)?;
        if parens {
            self.depth += 1;
            self.max_depth = self.max_depth.max(self.depth);
            self.out.push('(');
            self.space()?;
        }
        let before_pow = before_pow && !parens;
        match e {
            Expr::Literal(text) => self.out.push_str(text),
            Expr::Neg(inner) => {
                self.operator('-')?;
                // "-2^2" is -(2^2): a power needs no parentheses under a minus.
                let needs = inner.precedence() < NEG_PRECEDENCE
                    || (before_pow && !matches!(**inner, Expr::Literal(_)));
                self.write(inner, needs, before_pow)?;
            }
            Expr::Binary(op, left, right) => {
                // Left-associative: the left operand needs parentheses only
                // when it binds more loosely (a negation under ^ does).
                let left_needs = left.precedence() < op.precedence();
                self.write(left, left_needs, *op == Op::Pow)?;
                self.operator(op.symbol())?;
                // A negated literal may follow an operator directly (1 - -1,
                // 2^-1) unless a ^ comes next: whether 2^-3^2 means
                // (2^-3)^2 or 2^-(3^2) is not documented.
                let negated_literal =
                    matches!(&**right, Expr::Neg(inner) if matches!(**inner, Expr::Literal(_)));
                let right_needs = if negated_literal {
                    before_pow
                } else {
                    right.precedence() <= op.precedence()
                };
                self.write(right, right_needs, before_pow)?;
            }
        }
        if parens {
            self.space()?;
            self.out.push(')');
            self.depth -= 1;
        }
        Ok(())
    }
}

const ARITHMETIC_ERRORS: [&str; 6] = [
    "division by zero",
    "modulo by zero",
    "overflow",
    "undefined",
    "not a number",
    "no finite value",
];

fn check(u: &mut Unstructured) -> Result<()> {
    let depth = u.int_in_range(0..=7)?;
    let tree = expr(u, depth)?;
    let mut writer = Writer {
        u,
        out: String::new(),
        depth: 0,
        max_depth: 0,
        operators: 0,
    };
    writer.space()?;
    writer.write(&tree, false, false)?;
    writer.space()?;
    let (expression, max_depth, operators) = (writer.out, writer.max_depth, writer.operators);

    let got = run(
        &calculator(),
        &json!({ "expression": expression }),
        "result",
    );
    if expression.chars().count() > limits().max_expression_len
        || max_depth > MAX_PAREN_DEPTH
        || operators > MAX_OPERATORS
    {
        assert!(
            got.is_err(),
            "{expression:?} is over a limit but gave {got:?}"
        );
        return Ok(());
    }
    match (tree.eval(), got) {
        (None, Err(err)) => assert!(
            ARITHMETIC_ERRORS.iter().any(|f| err.message.contains(f)),
            "{expression:?} ({tree:?}) has a non-finite intermediate value, but the error is {:?}",
            err.message
        ),
        (None, Ok(result)) => panic!(
            "{expression:?} ({tree:?}) has a non-finite intermediate value, but gave {result}"
        ),
        (Some(value), Err(err)) => panic!(
            "{expression:?} ({tree:?}) is {value:e}, but failed: {:?}",
            err.message
        ),
        (Some(value), Ok(result)) => {
            let Value::Number(number) = &result else {
                panic!("{expression:?}: result {result} is not a number");
            };
            let integer = tree.all_integer_literals()
                && value.fract() == 0.0
                && value.abs() <= MAX_EXACT_FLOAT_INT;
            if integer {
                assert_eq!(
                    number.as_i64(),
                    Some(value as i64),
                    "{expression:?} ({tree:?}): expected the integer {value}, got {number}"
                );
            } else {
                let got = number.as_f64().filter(|_| number.is_f64());
                assert!(
                    got.is_some_and(|g| g.to_bits() == value.to_bits()),
                    "{expression:?} ({tree:?}): expected the float {value:e}, got {number}"
                );
            }
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
