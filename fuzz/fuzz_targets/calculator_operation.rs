//! The calculator's named operations against a reference of the documented
//! integer semantics: with two JSON integers (within i64) the result is the
//! exact integer when it fits in an i64 (divide only when exact; modulo keeps
//! the sign of the dividend); otherwise the 64-bit float result. Division or
//! modulo by zero, zero to a negative power, a negative number to a fractional
//! power, square roots of negative numbers and overflow are errors.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use tool_registry_fuzz::{calculator, number, run};

const OPERATIONS: [&str; 7] = [
    "add", "subtract", "multiply", "divide", "power", "modulo", "sqrt",
];

#[derive(Debug)]
enum Expected {
    Int(i64),
    Float(f64),
    Err(&'static str),
}

fn float(value: f64) -> Expected {
    if value.is_nan() {
        Expected::Err("not a number")
    } else if value.is_infinite() {
        Expected::Err("overflow")
    } else {
        Expected::Float(value)
    }
}

fn fits(value: i128) -> Option<i64> {
    i64::try_from(value).ok()
}

/// The exact integer result, when the documented rules give one.
fn exact(operation: &str, x: i64, y: i64) -> Option<i64> {
    let (x, y) = (i128::from(x), i128::from(y));
    match operation {
        "add" => fits(x + y),
        "subtract" => fits(x - y),
        "multiply" => fits(x * y),
        "divide" if y != 0 && x % y == 0 => fits(x / y),
        "modulo" if y != 0 => fits(x % y),
        "power" if y >= 0 => match x {
            0 => Some(if y == 0 { 1 } else { 0 }),
            1 => Some(1),
            -1 => Some(if y % 2 == 0 { 1 } else { -1 }),
            _ if y <= 64 => x.checked_pow(u32::try_from(y).ok()?).and_then(fits),
            _ => None,
        },
        _ => None,
    }
}

/// The integer square root of `x` when `x` is a perfect square.
fn exact_sqrt(x: i64) -> Option<i64> {
    if x < 0 {
        return None;
    }
    let guess = (x as f64).sqrt() as i64;
    (guess.saturating_sub(2)..=guess.saturating_add(2))
        .find(|r| *r >= 0 && r.checked_mul(*r) == Some(x))
}

fn reference(operation: &str, a: &Number, b: Option<&Number>) -> Expected {
    let af = a.as_f64().expect("finite");
    if operation == "sqrt" {
        if af < 0.0 {
            return Expected::Err("negative number");
        }
        if let Some(root) = a.as_i64().and_then(exact_sqrt) {
            return Expected::Int(root);
        }
        return float(af.sqrt());
    }
    if !OPERATIONS.contains(&operation) {
        return Expected::Err("unknown operation");
    }
    let Some(b) = b else {
        return Expected::Err("needs a second operand 'b'");
    };
    let bf = b.as_f64().expect("finite");
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        match operation {
            "divide" if y == 0 => return Expected::Err("division by zero"),
            "modulo" if y == 0 => return Expected::Err("modulo by zero"),
            "power" if y < 0 && x == 0 => return Expected::Err("division by zero"),
            _ => {}
        }
        if let Some(value) = exact(operation, x, y) {
            return Expected::Int(value);
        }
    }
    match operation {
        "add" => float(af + bf),
        "subtract" => float(af - bf),
        "multiply" => float(af * bf),
        "divide" if bf == 0.0 => Expected::Err("division by zero"),
        "divide" => float(af / bf),
        "modulo" if bf == 0.0 => Expected::Err("modulo by zero"),
        "modulo" => float(af % bf),
        "power" if af == 0.0 && bf < 0.0 => Expected::Err("division by zero"),
        "power" if af < 0.0 && bf.fract() != 0.0 => Expected::Err("fractional power"),
        "power" => float(af.powf(bf)),
        _ => unreachable!("checked above"),
    }
}

fn check(u: &mut Unstructured) -> Result<()> {
    let operation = if u.ratio(15, 16)? {
        *u.choose(&OPERATIONS)?
    } else {
        *u.choose(&["root", "ADD", "", "sqrt "])?
    };
    let a = number(u)?;
    let b = if u.ratio(7, 8)? {
        Some(number(u)?)
    } else {
        None
    };
    let mut args = Map::new();
    args.insert("operation".into(), Value::String(operation.into()));
    args.insert("a".into(), Value::Number(a.clone()));
    if let Some(b) = &b {
        args.insert("b".into(), Value::Number(b.clone()));
    }
    let args = Value::Object(args);

    let got = run(&calculator(), &args, "result");
    let expected = reference(operation, &a, b.as_ref());
    match (&expected, &got) {
        (Expected::Int(want), Ok(Value::Number(n))) if n.is_i64() || n.is_u64() => {
            assert_eq!(
                n.as_i64(),
                Some(*want),
                "{args}: expected {expected:?}, got {n}"
            );
        }
        (Expected::Float(want), Ok(Value::Number(n))) if n.is_f64() => {
            let value = n.as_f64().expect("f64");
            assert!(
                value.to_bits() == want.to_bits(),
                "{args}: expected {expected:?}, got {n}"
            );
        }
        (Expected::Err(fragment), Err(err)) => assert!(
            err.message.contains(fragment),
            "{args}: expected an error with {fragment:?}, got {:?}",
            err.message
        ),
        _ => panic!("{args}: expected {expected:?}, got {got:?}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
