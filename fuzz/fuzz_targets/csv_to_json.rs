//! csv_to_json on arbitrary text, with or without a delimiter and type inference.
//!
//! Input: the first byte picks whether types are inferred (high bit) and the
//! delimiter (absent, a usual one, or any ASCII byte including the forbidden
//! quote and line breaks); the rest is the CSV text (lossy UTF-8).
//!
//! Checks: it never panics; a success is an array of objects that all have
//! exactly the header's columns, as strings, or, with infer_types, as the
//! documented conversion of those same strings (empty -> null, true/false ->
//! booleans, JSON-style numbers -> numbers, anything else unchanged); errors
//! name a line that exists in the text; a forbidden delimiter is an error; and
//! the parsed rows survive json_to_csv and csv_to_json again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tool_registry_fuzz::{csv_to_json, json_to_csv, line_breaks, reported_line, run};

fn parse(text: &str, delimiter: Option<char>, infer_types: bool) -> Result<Vec<Value>, String> {
    let mut args = Map::new();
    args.insert("csv".into(), json!(text));
    if let Some(d) = delimiter {
        args.insert("delimiter".into(), json!(d.to_string()));
    }
    if infer_types || text.len() % 2 == 0 {
        args.insert("infer_types".into(), json!(infer_types));
    }
    match run(&csv_to_json(), &Value::Object(args), "data") {
        Ok(Value::Array(rows)) => Ok(rows),
        Ok(other) => panic!("data {other} is not an array"),
        Err(err) => Err(err.message),
    }
}

/// The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
fn is_json_number(text: &str) -> bool {
    let mut rest = text.strip_prefix('-').unwrap_or(text);
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let int = digits(rest);
    if int == 0 || (int > 1 && rest.starts_with('0')) {
        return false;
    }
    rest = &rest[int..];
    if let Some(after) = rest.strip_prefix('.') {
        let frac = digits(after);
        if frac == 0 {
            return false;
        }
        rest = &after[frac..];
    }
    if let Some(after) = rest.strip_prefix(['e', 'E']) {
        let after = after.strip_prefix(['+', '-']).unwrap_or(after);
        let exp = digits(after);
        if exp == 0 {
            return false;
        }
        rest = &after[exp..];
    }
    rest.is_empty()
}

/// What infer_types documents for one cell, given its text: empty -> null,
/// true/false -> booleans, JSON-style numbers -> numbers (integers too big for
/// 64 bits and floats too big for f64 stay text), anything else unchanged.
fn check_inferred(text: &str, value: &Value) {
    let integer_form = text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    match value {
        Value::Null => assert_eq!(text, "", "null from {text:?}"),
        Value::Bool(b) => assert_eq!(text, b.to_string(), "{b} from {text:?}"),
        Value::String(s) => {
            assert_eq!(s, text, "string changed");
            assert!(
                !matches!(text, "" | "true" | "false"),
                "{text:?} was not converted"
            );
            if is_json_number(text) {
                let too_big = if integer_form {
                    text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
                } else {
                    !text.parse::<f64>().is_ok_and(f64::is_finite)
                };
                assert!(too_big, "the number {text:?} was kept as a string");
            }
        }
        Value::Number(n) => {
            assert!(
                is_json_number(text),
                "{text:?} is not a JSON-style number but became {n}"
            );
            if integer_form {
                let exact = text.parse::<i64>().ok().map(Value::from);
                let exact = exact.or_else(|| text.parse::<u64>().ok().map(Value::from));
                assert_eq!(exact.as_ref(), Some(value), "{text:?} became {n}");
            } else {
                assert!(n.is_f64(), "{text:?} became {n}");
                let f = n.as_f64().expect("float");
                assert!(f.is_finite(), "{text:?} became {n}");
                assert_eq!(text.parse::<f64>().ok(), Some(f), "{text:?} became {n}");
            }
        }
        other => panic!("{text:?} became {other}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let infer_types = flags & 0x80 != 0;
    let delimiter = match flags & 0x7f {
        0 => None,
        1 => Some(b','),
        2 => Some(b';'),
        3 => Some(b'\t'),
        4 => Some(b'|'),
        other => Some(other),
    }
    .map(char::from);

    let result = parse(&text, delimiter, infer_types);
    if matches!(delimiter, Some('"' | '\r' | '\n')) {
        let err = result.expect_err("a quote or line break as delimiter must be refused");
        assert!(err.contains("not allowed"), "{err}");
        return;
    }
    let rows = match result {
        Ok(rows) => rows,
        Err(message) => {
            assert!(
                message.starts_with("malformed CSV")
                    || message.starts_with("duplicate column name"),
                "unexpected error {message:?}"
            );
            if let Some(line) = reported_line(&message) {
                let lines = line_breaks(&text) as u64 + 1;
                assert!(
                    (1..=lines).contains(&line),
                    "error names line {line} of a text with {lines} lines: {message}"
                );
            }
            return;
        }
    };

    // Same shape with and without inference, and the documented conversion.
    let strings = parse(&text, delimiter, false).expect("parses without inference too");
    assert_eq!(
        rows.len(),
        strings.len(),
        "row count depends on infer_types"
    );
    let columns = strings.first().and_then(Value::as_object);
    for (row, plain) in rows.iter().zip(&strings) {
        let (Some(row), Some(plain)) = (row.as_object(), plain.as_object()) else {
            panic!("rows must be objects: {row} / {plain}");
        };
        assert!(
            columns.is_some_and(|c| c.keys().eq(plain.keys())),
            "rows have different columns"
        );
        assert!(row.keys().eq(plain.keys()), "columns depend on infer_types");
        for (key, cell) in plain {
            let Value::String(cell) = cell else {
                panic!("without infer_types cell {key:?} is {cell}, not a string");
            };
            if infer_types {
                check_inferred(cell, &row[key]);
            }
        }
    }

    // The parsed rows are flat objects of strings: the documented round trip.
    let csv = run(
        &json_to_csv(),
        &json!({ "data": strings, "delimiter": delimiter.unwrap_or(',').to_string() }),
        "csv",
    )
    .unwrap_or_else(|err| panic!("json_to_csv of parsed rows failed: {}", err.message));
    let csv = csv.as_str().expect("csv text");
    let again = parse(csv, delimiter, false)
        .unwrap_or_else(|err| panic!("csv_to_json of {csv:?} failed: {err}"));
    assert_eq!(
        again, strings,
        "round trip through {csv:?} changed the rows"
    );
});
