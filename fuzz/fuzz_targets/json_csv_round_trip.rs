//! json_to_csv followed by csv_to_json (without type inference).
//!
//! Two kinds of input, with any allowed delimiter:
//! - records that are flat objects with string values (the documented round
//!   trip): they come back unchanged when every record has every column;
//!   missing keys and nulls come back as empty strings;
//! - arbitrary JSON arrays: json_to_csv fails exactly when an item is not an
//!   object or flattening it makes a key twice (naming the first such item);
//!   otherwise csv_to_json gives back, for every record, each flattened key
//!   (nested keys joined with '.', array elements by index, {} and [] kept)
//!   with the documented cell text: null and missing as "", strings as they
//!   are, anything else as JSON.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tool_registry_fuzz::{
    cell_text, csv_to_json, json_object, json_to_csv, json_value, key, leaf_paths, run, text,
};

fn delimiter(u: &mut Unstructured) -> Result<Option<char>> {
    Ok(match u.int_in_range(0..=3)? {
        0 => None,
        1 => Some(*u.choose(&[',', ';', '\t', '|'])?),
        2 => Some(*u.choose(&[' ', ':', '.', 'a', '0', '#', '\\', '\'', '\0', '-', '\x7f'])?),
        _ => {
            let c = char::from(u.int_in_range(0u8..=127)?);
            if matches!(c, '"' | '\r' | '\n') {
                None
            } else {
                Some(c)
            }
        }
    })
}

/// A cell of a flat record.
enum Cell {
    Missing,
    Null,
    Text(String),
}

fn flat_records(u: &mut Unstructured) -> Result<(Vec<Value>, bool)> {
    let mut columns = Vec::new();
    for _ in 0..u.int_in_range(1..=5)? {
        let k = key(u)?;
        if !columns.contains(&k) {
            columns.push(k);
        }
    }
    let complete = u.ratio(3, 4)?;
    let mut records = Vec::new();
    for _ in 0..u.int_in_range(0..=6)? {
        let mut record = Map::new();
        for column in &columns {
            let cell = if complete {
                Cell::Text(text(u, 10)?)
            } else {
                match u.int_in_range(0..=3)? {
                    0 => Cell::Missing,
                    1 => Cell::Null,
                    _ => Cell::Text(text(u, 10)?),
                }
            };
            match cell {
                Cell::Missing => {}
                Cell::Null => {
                    record.insert(column.clone(), Value::Null);
                }
                Cell::Text(s) => {
                    record.insert(column.clone(), Value::String(s));
                }
            }
        }
        records.push(Value::Object(record));
    }
    Ok((records, complete))
}

fn any_items(u: &mut Unstructured) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let item = if u.ratio(9, 10)? {
            let len = u.int_in_range(0..=4)?;
            Value::Object(json_object(u, len, 3, 3)?)
        } else {
            json_value(u, 2, 2)?
        };
        items.push(item);
    }
    Ok(items)
}

/// What the documented rules say json_to_csv does with `items`: an error
/// fragment, or the rows csv_to_json should read back.
fn expected(items: &[Value]) -> std::result::Result<Vec<Map<String, Value>>, String> {
    let mut flat_items = Vec::new();
    let mut header: Vec<String> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(format!("item at index {index} is not an object"));
        }
        let mut flat = Map::new();
        for (path, leaf) in leaf_paths(item) {
            let joined = path.join(".");
            if flat.contains_key(&joined) {
                return Err(format!("item at index {index}: key collision"));
            }
            if !header.contains(&joined) {
                header.push(joined.clone());
            }
            flat.insert(joined, leaf);
        }
        flat_items.push(flat);
    }
    if header.is_empty() {
        return Ok(Vec::new());
    }
    Ok(flat_items
        .iter()
        .map(|flat| {
            header
                .iter()
                .map(|k| {
                    let cell = flat.get(k).map(cell_text).unwrap_or_default();
                    (k.clone(), Value::String(cell))
                })
                .collect()
        })
        .collect())
}

fn check(u: &mut Unstructured) -> Result<()> {
    let delimiter = delimiter(u)?;
    let (items, complete_flat) = if u.arbitrary()? {
        flat_records(u)?
    } else {
        (any_items(u)?, false)
    };
    let mut args = json!({ "data": items });
    if let Some(d) = delimiter {
        args["delimiter"] = json!(d.to_string());
    }
    let got = run(&json_to_csv(), &args, "csv");
    let want = expected(&items);
    let (csv, rows) = match (got, want) {
        (Err(err), Err(fragment)) => {
            assert!(
                err.message.contains(&fragment),
                "{args}: expected an error with {fragment:?}, got {:?}",
                err.message
            );
            return Ok(());
        }
        (Err(err), Ok(_)) => panic!("{args}: json_to_csv failed: {:?}", err.message),
        (Ok(csv), Err(fragment)) => {
            panic!("{args}: expected an error with {fragment:?}, got {csv}")
        }
        (Ok(csv), Ok(rows)) => {
            let csv = csv.as_str().expect("csv is text").to_string();
            if rows.is_empty() {
                assert_eq!(csv, "", "{args}: no columns but CSV {csv:?}");
            } else {
                assert!(
                    csv.ends_with('\n'),
                    "{args}: CSV {csv:?} does not end in a newline"
                );
            }
            (csv, rows)
        }
    };
    let mut back_args = json!({ "csv": csv });
    if let Some(d) = delimiter {
        back_args["delimiter"] = json!(d.to_string());
    }
    let back = run(&csv_to_json(), &back_args, "data")
        .unwrap_or_else(|err| panic!("{args}: csv_to_json of {csv:?} failed: {:?}", err.message));
    let rows: Vec<Value> = rows.into_iter().map(Value::Object).collect();
    assert_eq!(
        back,
        Value::Array(rows),
        "{args}: round trip through {csv:?}"
    );
    if complete_flat {
        // Flat records of strings with every column: back exactly as given.
        assert_eq!(back, Value::Array(items), "{args}: via {csv:?}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
