//! Tests of the CSV transforms.

use super::*;
use crate::builtins::data::test_support::{
    assert_output_limit, assert_over_output_limit, expect_err, limits, with_output_limit,
};

#[test]
fn json_to_csv_cases() {
    let tool = JsonToCsv::new(limits());
    let cases = [
        (json!({"data": []}), ""),
        (json!({"data": [{}]}), ""),
        (json!({"data": [{"a": 1, "b": "x"}]}), "a,b\n1,x\n"),
        (
            json!({"data": [{"a": 1}, {"b": 2}, {"a": 3, "b": 4}]}),
            "a,b\n1,\n,2\n3,4\n",
        ),
        (
            json!({"data": [{"a": {"b": 1, "c": {"d": true}}, "e": null}]}),
            "a.b,a.c.d,e\n1,true,\n",
        ),
        (
            json!({"data": [{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": ["z"]}]}),
            "id,tags.0,tags.1\n1,x,y\n2,z,\n",
        ),
        (json!({"data": [{"a": {}, "b": []}]}), "a,b\n{},[]\n"),
        (
            json!({"data": [{"a": "x,y", "b": "say \"hi\"", "c": "two\nlines"}]}),
            "a,b,c\n\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"\n",
        ),
        (
            json!({"data": [{"a": "x;y", "b": "x,y"}], "delimiter": ";"}),
            "a;b\n\"x;y\";x,y\n",
        ),
        (
            json!({"data": [{"a": 1, "b": 2}], "delimiter": "\t"}),
            "a\tb\n1\t2\n",
        ),
        (
            json!({"data": [{"city": "東京", "name": "Zoë"}]}),
            "city,name\n東京,Zoë\n",
        ),
        (
            json!({"data": [{"big": 12345678901234567890u64, "n": 1.5, "neg": -3}]}),
            "big,n,neg\n12345678901234567890,1.5,-3\n",
        ),
        (json!({"data": [{"a": ""}]}), "a\n\"\"\n"),
    ];
    for (args, expected) in cases {
        let got = tool
            .execute(&args)
            .unwrap_or_else(|err| panic!("{args}: {err}"));
        assert_eq!(got, json!({ "csv": expected }), "{args}");
    }
}

#[test]
fn json_to_csv_header_keeps_first_seen_order_across_rows() {
    let tool = JsonToCsv::new(limits());
    let got = tool
        .execute(&json!({"data": [{"b": 1}, {"a": 2}, {"c": 3, "b": 4}]}))
        .expect("converts");
    assert_eq!(got["csv"], "b,a,c\n1,,\n,2,\n4,,3\n");
}

#[test]
fn json_to_csv_errors() {
    let tool = JsonToCsv::new(limits());
    let cases = [
        (json!({}), "missing required argument 'data'"),
        (
            json!({"data": {"a": 1}}),
            "must be an array of objects, got object",
        ),
        (
            json!({"data": "a,b"}),
            "must be an array of objects, got string",
        ),
        (
            json!({"data": [{"a": 1}, 2]}),
            "item at index 1 is not an object (got number)",
        ),
        (
            json!({"data": [{"a": 1}, {}, [1]]}),
            "item at index 2 is not an object (got array)",
        ),
        (
            json!({"data": [null]}),
            "item at index 0 is not an object (got null)",
        ),
        (
            json!({"data": [{"a": {"b": 1}, "a.b": 2}]}),
            "key collision: 'a.b'",
        ),
        (
            json!({"data": [], "delimiter": "ab"}),
            "exactly one ASCII character",
        ),
        (json!({"data": [], "delimiter": "\""}), "not allowed"),
        (json!({"data": [], "delimiter": 1}), "must be a string"),
        (json!({"data": [], "extra": 1}), "unknown argument 'extra'"),
    ];
    for (args, fragment) in cases {
        expect_err(tool.execute(&args), fragment, &args.to_string());
    }
}

#[test]
fn csv_to_json_cases() {
    let tool = CsvToJson::new(limits());
    let cases = [
        (json!({"csv": ""}), json!([])),
        (json!({"csv": "a,b\n"}), json!([])),
        (json!({"csv": "a,b\n1,2\n"}), json!([{"a": "1", "b": "2"}])),
        (
            json!({"csv": "a,b\r\n1,2\r\n3,4"}),
            json!([{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]),
        ),
        (
            json!({"csv": "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n\"two\nlines\",\n"}),
            json!([{"a": "x,y", "b": "say \"hi\""}, {"a": "two\nlines", "b": ""}]),
        ),
        (
            json!({"csv": "a;b\n1,5;2\n", "delimiter": ";"}),
            json!([{"a": "1,5", "b": "2"}]),
        ),
        (
            json!({"csv": "a\tb\n1\t2\n", "delimiter": "\t"}),
            json!([{"a": "1", "b": "2"}]),
        ),
        (
            json!({"csv": "name,city\nZoë,東京\n"}),
            json!([{"name": "Zoë", "city": "東京"}]),
        ),
        (
            json!({"csv": "a,b,c,d,e,f\n1,-2.5,true,,false,x\n", "infer_types": true}),
            json!([{"a": 1, "b": -2.5, "c": true, "d": null, "e": false, "f": "x"}]),
        ),
        (
            json!({"csv": "a,b,c,d,e,f,g\n007,+1,1e3,TRUE,.5,1.,-0\n", "infer_types": true}),
            json!([{"a": "007", "b": "+1", "c": 1000.0, "d": "TRUE", "e": ".5", "f": "1.", "g": 0}]),
        ),
        (
            json!({"csv": "a,b,c,d\n9223372036854775807,18446744073709551615,99999999999999999999,1e999\n", "infer_types": true}),
            json!([{"a": i64::MAX, "b": u64::MAX, "c": "99999999999999999999", "d": "1e999"}]),
        ),
        (
            json!({"csv": "a,b\n1,\n", "infer_types": false}),
            json!([{"a": "1", "b": ""}]),
        ),
        (
            json!({"csv": "a,b\n 1 , 2\n", "infer_types": true}),
            json!([{"a": " 1 ", "b": " 2"}]),
        ),
        (
            json!({"csv": "a.b,c\n1,2\n"}),
            json!([{"a.b": "1", "c": "2"}]),
        ),
    ];
    for (args, expected) in cases {
        let got = tool
            .execute(&args)
            .unwrap_or_else(|err| panic!("{args}: {err}"));
        assert_eq!(got, json!({ "data": expected }), "{args}");
    }
}

#[test]
fn csv_to_json_errors() {
    let tool = CsvToJson::new(limits());
    let cases = [
        (
            json!({"csv": "a,b\n1,2\n3\n"}),
            "malformed CSV at line 3: expected 2 fields as in the header row, found 1",
        ),
        (json!({"csv": "a,b\n1,2,3\n"}), "at line 2"),
        (
            json!({"csv": "a,b\n\"multi\nline\",2\n1,2,3\n"}),
            "at line 4",
        ),
        (json!({"csv": "a,b\r\n1,2\r\n\r\n3,4,5\r\n"}), "at line 4"),
        (json!({"csv": "a,b\r\n1,2\r\n3,4,5\r\n"}), "at line 3"),
        (json!({"csv": "a,b\r1,2\r3,4,5\r"}), "at line 3"),
        (json!({"csv": "a,b\n\n\n1,2,3\n"}), "at line 4"),
        (json!({"csv": "a,b\r\n\r\n\r\n1,2,3\r\n"}), "at line 4"),
        (json!({"csv": "a,b\n1,2\n\n3,4,5\n"}), "at line 4"),
        (
            json!({"csv": "a,b\n1,2\n\"x\ny\",2\n\"p\r\nq\"\n"}),
            "at line 5: expected 2 fields as in the header row, found 1",
        ),
        (json!({"csv": "a,a\n1,2\n"}), "duplicate column name 'a'"),
        (
            json!({"csv": "a,b", "delimiter": ""}),
            "exactly one ASCII character",
        ),
        (
            json!({"csv": "a,b", "delimiter": ";;"}),
            "exactly one ASCII character",
        ),
        (
            json!({"csv": "a,b", "delimiter": "→"}),
            "exactly one ASCII character",
        ),
        (json!({"csv": "a,b", "delimiter": "\n"}), "not allowed"),
        (
            json!({"csv": "a,b", "infer_types": "yes"}),
            "'infer_types' must be a boolean",
        ),
        (json!({"csv": 12}), "'csv' must be a string, got number"),
        (json!({}), "missing required argument 'csv'"),
    ];
    for (args, fragment) in cases {
        expect_err(tool.execute(&args), fragment, &args.to_string());
    }
}

#[test]
fn csv_round_trip_through_json() {
    let records = json!([
        {"id": "1", "note": "plain"},
        {"id": "2", "note": "comma, quote \" and\nnewline"},
        {"id": "3", "note": "  spaces  "},
        {"id": "4", "note": ""},
    ]);
    assert_eq!(csv_round_trip(&records), records);
}

/// Records through json_to_csv, then csv_to_json.
fn csv_round_trip(records: &Value) -> Value {
    let csv = JsonToCsv::new(limits())
        .execute(&json!({ "data": records }))
        .expect("to csv");
    let back = CsvToJson::new(limits())
        .execute(&json!({ "csv": csv["csv"] }))
        .expect("from csv");
    back["data"].clone()
}

#[test]
fn a_first_key_opening_with_a_byte_order_mark_survives_the_round_trip() {
    // Found by the json_csv_round_trip fuzz target: unquoted, the mark was dropped.
    for records in [
        json!([{"\u{feff}id": "1"}]),
        json!([{"\u{feff}": "x"}, {"\u{feff}": "y"}]),
    ] {
        assert_eq!(csv_round_trip(&records), records);
    }
}

#[test]
fn json_number_grammar() {
    let cases = [
        ("0", true),
        ("-0", true),
        ("12", true),
        ("-12.5", true),
        ("1e5", true),
        ("1E+5", true),
        ("1.5e-3", true),
        ("", false),
        ("-", false),
        ("01", false),
        ("+1", false),
        (".5", false),
        ("1.", false),
        ("1e", false),
        ("1e+", false),
        ("1.2.3", false),
        ("NaN", false),
        ("inf", false),
        ("0x10", false),
        ("1 ", false),
    ];
    for (text, expected) in cases {
        assert_eq!(looks_like_json_number(text), expected, "{text:?}");
    }
}

#[test]
fn delimiter_parsing() {
    let cases = [
        (json!({}), Ok(b',')),
        (json!({"delimiter": null}), Ok(b',')),
        (json!({"delimiter": ";"}), Ok(b';')),
        (json!({"delimiter": "\t"}), Ok(b'\t')),
        (json!({"delimiter": "|"}), Ok(b'|')),
        (json!({"delimiter": ""}), Err("exactly one ASCII character")),
        (
            json!({"delimiter": ",,"}),
            Err("exactly one ASCII character"),
        ),
        (
            json!({"delimiter": "é"}),
            Err("exactly one ASCII character"),
        ),
        (json!({"delimiter": "\""}), Err("not allowed")),
        (json!({"delimiter": "\n"}), Err("not allowed")),
        (json!({"delimiter": 44}), Err("must be a string")),
    ];
    for (args, expected) in cases {
        let map = args.as_object().expect("object");
        match (parse_delimiter(map), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{args}"),
            (Err(err), Err(fragment)) => {
                assert!(err.message.contains(fragment), "{args}: {}", err.message)
            }
            (got, want) => panic!("{args}: got {got:?}, want {want:?}"),
        }
    }
}

/// The CSV text `json_to_csv` makes of `args`, and the records it flattens on the way as
/// a JSON array.
fn json_to_csv_sizes(args: &Value) -> (usize, usize) {
    let csv = JsonToCsv::new(limits()).execute(args).expect("converts");
    let flattened: Vec<Value> = args["data"]
        .as_array()
        .expect("records")
        .iter()
        .map(|record| {
            crate::builtins::FlattenJson::new(limits())
                .execute(&json!({ "data": record }))
                .expect("flattens")["result"]
                .take()
        })
        .collect();
    (
        csv["csv"].as_str().expect("text").len(),
        Value::Array(flattened).to_string().len(),
    )
}

#[test]
fn json_to_csv_refuses_a_grid_over_the_output_limit() {
    // Each record has a key of its own: 40 records make 40 × 40 cells.
    let records: Vec<Value> = (0..40)
        .map(|i| json!({ format!("column{i}"): i }))
        .collect();
    let args = json!({ "data": records });
    let (csv_len, flattened_len) = json_to_csv_sizes(&args);
    assert!(csv_len > 1600 && csv_len > 3 * flattened_len, "{csv_len}");
    assert_output_limit(
        |limits| JsonToCsv::new(limits).execute(&args),
        csv_len,
        "the CSV text",
    );
}

#[test]
fn json_to_csv_refuses_records_that_flatten_over_the_output_limit() {
    // A long key over an array repeats per element in every record: a short CSV, but a
    // large flattening.
    let record = json!({ "k".repeat(100): [0, 0, 0, 0, 0] });
    let args = json!({ "data": vec![record; 20] });
    let (csv_len, flattened_len) = json_to_csv_sizes(&args);
    assert!(flattened_len > 10_000 && flattened_len > 10 * csv_len);
    assert_output_limit(
        |limits| JsonToCsv::new(limits).execute(&args),
        flattened_len,
        "the flattened records (as JSON)",
    );
    // Far over the limit, the error still tells the whole size.
    assert_over_output_limit(
        JsonToCsv::new(with_output_limit(1000)).execute(&args),
        flattened_len,
        "the flattened records (as JSON)",
        1000,
    );
}

#[test]
fn json_to_csv_counts_quoted_and_lone_cells_exactly() {
    let cases = [
        json!({"data": [{"a": ""}, {"a": "x"}, {}, {"a": null}]}),
        json!({"data": [{"a": 1}, {"b": "x"}]}),
        json!({"data": [{"a": "x,y", "b": "say \"hi\"", "c": "two\nlines", "d": "cr\r"}]}),
        json!({"data": [{"a.b": 1.5, "c": true}, {"d": "1.5"}], "delimiter": "."}),
        json!({"data": [{"\u{feff}a": "\"", "é": []}, {"x": {"y": {}}}], "delimiter": "\t"}),
    ];
    for args in cases {
        let (csv_len, flattened_len) = json_to_csv_sizes(&args);
        let (size, what) = if csv_len >= flattened_len {
            (csv_len, "the CSV text")
        } else {
            (flattened_len, "the flattened records (as JSON)")
        };
        assert_output_limit(|limits| JsonToCsv::new(limits).execute(&args), size, what);
    }
}

#[test]
fn csv_to_json_refuses_a_result_over_the_output_limit() {
    // Two long header names over rows of empty cells: every row repeats both names.
    let csv = format!(
        "{},{}\n{}",
        "a".repeat(100),
        "b".repeat(100),
        ",\n".repeat(50)
    );
    let args = json!({ "csv": csv });
    let result = CsvToJson::new(limits()).execute(&args).expect("converts");
    let size = result["data"].to_string().len();
    assert!(size > 10_000 && size > 30 * csv.len(), "{size}");
    assert_output_limit(
        |limits| CsvToJson::new(limits).execute(&args),
        size,
        "the result (as JSON)",
    );
    assert_over_output_limit(
        CsvToJson::new(with_output_limit(1000)).execute(&args),
        size,
        "the result (as JSON)",
        1000,
    );
}

#[test]
fn csv_to_json_counts_escaped_and_inferred_values_exactly() {
    let csv = "\"na\"\"me\",\"t\tab\",é,\"\u{1}\"\n\
               1,true,,-2.5e3\n\
               \"x\ny\",false,\"\\\",12345678901234567890123\n";
    for infer_types in [false, true] {
        let args = json!({ "csv": csv, "infer_types": infer_types });
        let result = CsvToJson::new(limits()).execute(&args).expect("converts");
        let size = result["data"].to_string().len();
        assert_output_limit(
            |limits| CsvToJson::new(limits).execute(&args),
            size,
            "the result (as JSON)",
        );
    }
}
