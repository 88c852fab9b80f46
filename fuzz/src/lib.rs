//! Shared pieces of the fuzz targets: the tools built as the service builds
//! them, generators of JSON values, keys, separators and text, and reference
//! versions of the documented rules that the targets check the tools against.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};
use tool_registry::builtins::{
    BuiltinLimits, BuiltinTool, Calculator, CsvToJson, FlattenJson, JsonToCsv, ToolError,
    UnflattenJson,
};

/// The limits the service uses by default (`builtin_tools(BuiltinLimits::default())`).
pub fn limits() -> BuiltinLimits {
    BuiltinLimits::default()
}

pub fn calculator() -> Calculator {
    Calculator::new(limits())
}

pub fn json_to_csv() -> JsonToCsv {
    JsonToCsv::new(limits())
}

pub fn csv_to_json() -> CsvToJson {
    CsvToJson::new(limits())
}

pub fn flatten_json() -> FlattenJson {
    FlattenJson::new(limits())
}

pub fn unflatten_json() -> UnflattenJson {
    UnflattenJson::new(limits())
}

/// Runs `tool` and, on success, checks that the result is an object with the
/// single key `field` and returns that value. Errors must carry a message.
pub fn run(
    tool: &dyn BuiltinTool,
    args: &Value,
    field: &str,
) -> std::result::Result<Value, ToolError> {
    match tool.execute(args) {
        Ok(Value::Object(mut map)) => {
            assert!(
                map.len() == 1 && map.contains_key(field),
                "{}: result {map:?} is not {{{field:?}: ...}} (args {args})",
                tool.name()
            );
            Ok(map.remove(field).expect("checked above"))
        }
        Ok(other) => panic!(
            "{}: result {other} is not an object (args {args})",
            tool.name()
        ),
        Err(err) => {
            assert!(
                !err.message.trim().is_empty(),
                "{}: empty error message (args {args})",
                tool.name()
            );
            Err(err)
        }
    }
}

/// True about once in `one_in` times, and false once the input is used up
/// (unlike `Unstructured::ratio`, which is then always true).
pub fn sometimes(u: &mut Unstructured, one_in: u8) -> Result<bool> {
    Ok(u.int_in_range(1..=one_in)? == one_in)
}

/// Characters that matter to the parsers, picked more often than others.
const INTERESTING_CHARS: &[char] = &[
    'a', 'b', 'x', '0', '1', '9', '.', ',', ';', '|', '"', '\'', '\n', '\r', ' ', '\t', '/', ':',
    '_', '-', '#', '\\', '{', '}', '[', ']', 'é', '東', '👍', '\u{feff}', '\u{0}', '\u{a0}',
    '\u{2028}',
];

/// A short string, mostly of characters the parsers care about.
pub fn text(u: &mut Unstructured, max_chars: usize) -> Result<String> {
    let len = u.int_in_range(0..=max_chars)?;
    let mut out = String::new();
    for _ in 0..len {
        let c = if u.ratio(3, 4)? {
            *u.choose(INTERESTING_CHARS)?
        } else {
            u.arbitrary::<char>()?
        };
        out.push(c);
    }
    Ok(out)
}

const KEYS: &[&str] = &[
    "", "a", "b", "c", "id", "0", "1", "2", "3", "00", "01", "10", "-1", "a.b", ".", "..", "/",
    "a/b", "::", ":", "_", "__", "-", "é", "ключ", " ", "a b", "\"", ",", "\n",
];

/// An object key: usually one of a few that collide with separators and array
/// indices, sometimes arbitrary text.
pub fn key(u: &mut Unstructured) -> Result<String> {
    if u.ratio(2, 3)? {
        Ok((*u.choose(KEYS)?).to_string())
    } else {
        text(u, 6)
    }
}

const SEPARATORS: &[&str] = &[
    ".", ".", ".", "/", "::", "__", "-", ":", "_", "a", "0", "1", "..", "aa", "é", "→", " ", ".:",
];

/// A non-empty separator for flatten/unflatten.
pub fn separator(u: &mut Unstructured) -> Result<String> {
    if u.ratio(4, 5)? {
        return Ok((*u.choose(SEPARATORS)?).to_string());
    }
    let mut sep = text(u, 3)?;
    if sep.is_empty() {
        sep.push('.');
    }
    Ok(sep)
}

/// A JSON number: a small or extreme integer, or a finite float.
pub fn number(u: &mut Unstructured) -> Result<Number> {
    Ok(match u.int_in_range(0..=4)? {
        0 => Number::from(u.int_in_range(-3i64..=12)?),
        1 => Number::from(u.arbitrary::<i64>()?),
        2 => Number::from(u.arbitrary::<u64>()?),
        3 => {
            Number::from_f64(*u.choose(&[0.5, -0.0, 1.5, 1e300, -2.5e-300, 0.1])?).expect("finite")
        }
        _ => {
            let f = u.arbitrary::<f64>()?;
            Number::from_f64(if f.is_finite() { f } else { 0.25 }).expect("finite")
        }
    })
}

/// A scalar JSON value.
pub fn scalar(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Number(number(u)?),
        _ => Value::String(text(u, 8)?),
    })
}

/// A JSON value nested at most `depth` levels, with at most `width` children
/// per array or object.
pub fn json_value(u: &mut Unstructured, depth: usize, width: usize) -> Result<Value> {
    if depth == 0 || u.ratio(2, 5)? {
        return scalar(u);
    }
    let len = u.int_in_range(0..=width)?;
    if u.arbitrary()? {
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(json_value(u, depth - 1, width)?);
        }
        Ok(Value::Array(items))
    } else {
        Ok(Value::Object(json_object(u, len, depth - 1, width)?))
    }
}

/// An object with up to `len` entries (duplicate keys keep the last value).
pub fn json_object(
    u: &mut Unstructured,
    len: usize,
    depth: usize,
    width: usize,
) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for _ in 0..len {
        let k = key(u)?;
        let v = json_value(u, depth, width)?;
        map.insert(k, v);
    }
    Ok(map)
}

/// A leaf in the documented flattening rules: a scalar, `{}` or `[]`.
pub fn is_flat_leaf(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => true,
    }
}

/// The leaves of `value` below the top level with their key paths, by the
/// documented rules: non-empty objects and arrays are descended into (array
/// elements keyed by their index), everything else is a leaf.
pub fn leaf_paths(value: &Value) -> Vec<(Vec<String>, Value)> {
    fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, Value)>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, child) in items.iter().enumerate() {
                    path.push(i.to_string());
                    walk(child, path, out);
                    path.pop();
                }
            }
            leaf => {
                if !path.is_empty() {
                    out.push((path.clone(), leaf.clone()));
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

/// A decimal array index without sign or leading zeros ("0", "7", "12").
pub fn canonical_index(key: &str) -> Option<usize> {
    let well_formed = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if well_formed { key.parse().ok() } else { None }
}

/// Whether some non-empty object in `value` has exactly the keys "0".."n-1":
/// the documented case that unflattening turns into an array.
pub fn has_index_keyed_object(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            let n = map.len();
            let index_keyed = n > 0
                && map
                    .keys()
                    .all(|k| canonical_index(k).is_some_and(|i| i < n));
            index_keyed || map.values().any(has_index_keyed_object)
        }
        Value::Array(items) => items.iter().any(has_index_keyed_object),
        _ => false,
    }
}

/// The CSV cell text json_to_csv writes for a flattened value (documented:
/// null becomes an empty cell; strings as they are; other values as JSON).
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Counts line breaks the way the CSV error messages number lines:
/// `\n`, `\r\n` and a lone `\r` each count once.
pub fn line_breaks(text: &str) -> usize {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(i, b)| match b {
            b'\n' => true,
            b'\r' => bytes.get(i + 1) != Some(&b'\n'),
            _ => false,
        })
        .count()
}

/// The line number in a " at line N" fragment of an error message, if any.
pub fn reported_line(message: &str) -> Option<u64> {
    let rest = &message[message.find(" at line ")? + " at line ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
