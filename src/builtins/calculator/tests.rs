//! The calculator's operations, expressions and limits.

use serde_json::{Value, json};

use super::expression::*;
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
