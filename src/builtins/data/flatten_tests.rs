//! Tests of flattening and unflattening.

use super::*;
use crate::builtins::data::test_support::{
    assert_output_limit, assert_over_output_limit, expect_err, limits, with_output_limit,
};

fn flatten(data: Value, separator: &str) -> Result<Value, ToolError> {
    FlattenJson::new(limits())
        .execute(&json!({"data": data, "separator": separator}))
        .map(|value| value["result"].clone())
}

fn unflatten(data: Value, separator: &str) -> Result<Value, ToolError> {
    UnflattenJson::new(limits())
        .execute(&json!({"data": data, "separator": separator}))
        .map(|value| value["result"].clone())
}

#[test]
fn flatten_cases() {
    let cases = [
        (json!({}), ".", json!({})),
        (json!([]), ".", json!({})),
        (json!({"a": 1}), ".", json!({"a": 1})),
        (json!({"a": {"b": {"c": "x"}}}), ".", json!({"a.b.c": "x"})),
        (
            json!({"a": [1, {"b": 2}]}),
            ".",
            json!({"a.0": 1, "a.1.b": 2}),
        ),
        (json!([10, [20]]), ".", json!({"0": 10, "1.0": 20})),
        (
            json!({"a": {}, "b": [], "c": null}),
            ".",
            json!({"a": {}, "b": [], "c": null}),
        ),
        (
            json!({"a": {"b": [[], {}]}}),
            ".",
            json!({"a.b.0": [], "a.b.1": {}}),
        ),
        (json!({"a": {"b": 1}}), "/", json!({"a/b": 1})),
        (json!({"a": {"b": 1}}), "__", json!({"a__b": 1})),
        (json!({"a.b": 1}), "/", json!({"a.b": 1})),
        (json!({"": {"": 1}}), ".", json!({".": 1})),
        (json!({"ключ": {"值": true}}), ".", json!({"ключ.值": true})),
    ];
    for (data, separator, expected) in cases {
        let got = flatten(data.clone(), separator).unwrap_or_else(|err| panic!("{data}: {err}"));
        assert_eq!(got, expected, "{data} with {separator:?}");
    }
}

#[test]
fn flatten_errors() {
    let tool = FlattenJson::new(limits());
    let mut deep = json!(1);
    for _ in 0..=MAX_DEPTH {
        deep = json!([deep]);
    }
    let cases = [
        (
            json!({"data": 5}),
            "must be a JSON object or array, got number",
        ),
        (
            json!({"data": "x"}),
            "must be a JSON object or array, got string",
        ),
        (
            json!({"data": null}),
            "must be a JSON object or array, got null",
        ),
        (
            json!({"data": {"a": {"b": 1}, "a.b": 2}}),
            "key collision: 'a.b'",
        ),
        (
            json!({"data": {"a": 1}, "separator": ""}),
            "separator must not be empty",
        ),
        (
            json!({"data": {"a": 1}, "separator": 1}),
            "'separator' must be a string",
        ),
        (
            json!({"separator": "."}),
            "missing required argument 'data'",
        ),
        (json!({"data": deep}), "nested too deeply"),
    ];
    for (args, fragment) in cases {
        expect_err(tool.execute(&args), fragment, &args.to_string());
    }
}

#[test]
fn unflatten_cases() {
    let cases = [
        (json!({}), ".", json!({})),
        (json!({"a": 1}), ".", json!({"a": 1})),
        (json!({"a.b.c": "x"}), ".", json!({"a": {"b": {"c": "x"}}})),
        (json!({"a.0": 1, "a.1": 2}), ".", json!({"a": [1, 2]})),
        (
            json!({"a.1": 1, "a.0": 0, "a.2": 2}),
            ".",
            json!({"a": [0, 1, 2]}),
        ),
        (
            json!({"a.0": 1, "a.2": 2}),
            ".",
            json!({"a": {"0": 1, "2": 2}}),
        ),
        (json!({"a.1": 1}), ".", json!({"a": {"1": 1}})),
        (json!({"a.00": 1}), ".", json!({"a": {"00": 1}})),
        (
            json!({"a.0": 1, "a.01": 2}),
            ".",
            json!({"a": {"0": 1, "01": 2}}),
        ),
        (json!({"a.-1": 1}), ".", json!({"a": {"-1": 1}})),
        (json!({"0": "x", "1": "y"}), ".", json!(["x", "y"])),
        (json!({"a": {}, "b": []}), ".", json!({"a": {}, "b": []})),
        (
            json!({"a/b": 1, "a/c.d": 2}),
            "/",
            json!({"a": {"b": 1, "c.d": 2}}),
        ),
        (
            json!({"x": {"kept": "as is"}}),
            ".",
            json!({"x": {"kept": "as is"}}),
        ),
        (json!({"a.": 1}), ".", json!({"a": {"": 1}})),
    ];
    for (data, separator, expected) in cases {
        let got = unflatten(data.clone(), separator).unwrap_or_else(|err| panic!("{data}: {err}"));
        assert_eq!(got, expected, "{data} with {separator:?}");
    }
}

#[test]
fn unflatten_errors() {
    let tool = UnflattenJson::new(limits());
    let deep_key = vec!["k"; MAX_DEPTH + 1].join(".");
    let cases = [
        (json!({"data": {"a": 1, "a.b": 2}}), "conflicting keys: 'a'"),
        (json!({"data": {"a.b": 2, "a": 1}}), "conflicting keys"),
        (
            json!({"data": {"a.b": 1, "a.b.c": 2}}),
            "conflicting keys: 'a.b'",
        ),
        (json!({"data": {"a": {}, "a.b": 1}}), "conflicting keys"),
        (json!({"data": {"x": [], "x.0": 1}}), "conflicting keys"),
        (json!({"data": [1, 2]}), "must be an object, got array"),
        (json!({"data": "a.b"}), "must be an object, got string"),
        (
            json!({"data": {"a": 1}, "separator": ""}),
            "separator must not be empty",
        ),
        (json!({"data": { deep_key: 1 }}), "nested too deeply"),
    ];
    for (args, fragment) in cases {
        expect_err(tool.execute(&args), fragment, &args.to_string());
    }
}

#[test]
fn flatten_then_unflatten_round_trips() {
    let documents = [
        json!({}),
        json!({"a": 1}),
        json!([1, 2, 3]),
        json!([[], {}, [[]], {"a": {}}]),
        json!({"user": {"name": "Ann", "langs": ["en", "fr"], "address": {"city": "Oslo", "zip": null}}}),
        json!({"matrix": [[1, 2], [3, 4]], "empty": {"list": [], "map": {}}, "flag": false}),
        json!({"items": [{"id": 1, "tags": []}, {"id": 2, "tags": ["x"], "meta": {"k": [{"deep": [0.5]}]}}]}),
        json!({"unicode": {"ключ": "значение", "emoji": "👍🏽", "日本": [true, null]}}),
        json!({"": {"": [""]}, "a": {"": 1}}),
        json!({"sparse": {"1": "one", "3": "three"}, "zeros": {"00": 0, "01": 1}}),
        json!({"n": [1e300, -0.0, 12345678901234567890u64, i64::MIN]}),
    ];
    for separator in [".", "/", "::"] {
        for document in &documents {
            let flat = flatten(document.clone(), separator)
                .unwrap_or_else(|err| panic!("flatten {document}: {err}"));
            assert!(
                flat.as_object()
                    .expect("flat object")
                    .values()
                    .all(|value| match value {
                        Value::Array(items) => items.is_empty(),
                        Value::Object(map) => map.is_empty(),
                        _ => true,
                    }),
                "{flat} is not flat"
            );
            let back = unflatten(flat.clone(), separator)
                .unwrap_or_else(|err| panic!("unflatten {flat}: {err}"));
            assert_eq!(&back, document, "round trip with {separator:?} via {flat}");
            // And flattening the result again gives the same flat object.
            assert_eq!(flatten(back, separator).expect("flatten again"), flat);
        }
    }
}

#[test]
fn keys_containing_the_separator_are_ambiguous() {
    // Documented: such a key is split when unflattening.
    let flat = flatten(json!({"a.b": 1}), ".").expect("no clash");
    assert_eq!(flat, json!({"a.b": 1}));
    assert_eq!(
        unflatten(flat, ".").expect("splits"),
        json!({"a": {"b": 1}})
    );
    // With a separator that does not occur in the keys it round-trips.
    let flat = flatten(json!({"a.b": {"c": 1}}), "/").expect("no clash");
    assert_eq!(
        unflatten(flat, "/").expect("splits"),
        json!({"a.b": {"c": 1}})
    );
}

#[test]
fn flatten_refuses_a_result_over_the_output_limit() {
    // A long key over an array repeats per element.
    let args = json!({ "data": { "k".repeat(100): vec![0; 50] } });
    let result = FlattenJson::new(limits()).execute(&args).expect("flattens");
    let size = result["result"].to_string().len();
    assert!(size > 5000, "{size}");
    assert_output_limit(
        |limits| FlattenJson::new(limits).execute(&args),
        size,
        "the flattened object (as JSON)",
    );
    assert_over_output_limit(
        FlattenJson::new(with_output_limit(1000)).execute(&args),
        size,
        "the flattened object (as JSON)",
        1000,
    );
}

#[test]
fn flatten_counts_escaped_keys_and_values_exactly() {
    let documents = [
        json!({}),
        json!([[]]),
        json!({"q\"uote": {"new\nline": ["tab\t", {"\u{1}": null}], "é": {}}, "n": [1.5e300, -0.0]}),
        json!([{"a": {"b": [true, false, "\\"]}}, [[[]]]]),
    ];
    for separator in [".", "\"", "→", "\n::"] {
        for data in &documents {
            let args = json!({ "data": data, "separator": separator });
            let result = FlattenJson::new(limits()).execute(&args).expect("flattens");
            let size = result["result"].to_string().len();
            assert_output_limit(
                |limits| FlattenJson::new(limits).execute(&args),
                size,
                "the flattened object (as JSON)",
            );
        }
    }
}
