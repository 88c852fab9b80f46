//! JSON records to CSV text and back (`json_to_csv`, `csv_to_json`).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::flatten::{DEFAULT_SEPARATOR, flatten_value};
use crate::builtins::{
    BuiltinLimits, BuiltinTool, ToolError,
    args::{
        check_serialized_size, json_type_name, object_args, optional_bool, optional_str, required,
        required_str,
    },
    output::{OutputBudget, json_len, json_str_len},
};

fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

/// The length of `field` as the CSV writer writes it in a row of `columns` fields: quoted
/// (with its quotes doubled) when `always_quote` or when it holds the delimiter, a quote or
/// a line break, and written as `""` when it is empty and the row's only field.
fn csv_field_len(field: &str, delimiter: u8, always_quote: bool, columns: usize) -> usize {
    let needs_quotes = always_quote
        || field
            .bytes()
            .any(|b| b == delimiter || matches!(b, b'"' | b'\r' | b'\n'));
    if needs_quotes {
        2 + field.len() + field.bytes().filter(|b| *b == b'"').count()
    } else if field.is_empty() && columns == 1 {
        2
    } else {
        field.len()
    }
}

/// The length of a CSV row of `columns` fields with `present` filled in and the rest empty:
/// the fields, the delimiters between them and the line break.
fn csv_row_len<'a>(
    present: impl IntoIterator<Item = &'a str>,
    columns: usize,
    delimiter: u8,
    always_quote: bool,
) -> usize {
    let mut len = columns;
    let mut filled = 0;
    for field in present {
        len += csv_field_len(field, delimiter, always_quote, columns);
        filled += 1;
    }
    let missing = columns.saturating_sub(filled);
    len + missing * csv_field_len("", delimiter, always_quote, columns)
}

fn records_to_csv(
    data: &Value,
    delimiter: u8,
    max_output_bytes: usize,
) -> Result<String, ToolError> {
    let Value::Array(items) = data else {
        return Err(ToolError::new(format!(
            "argument 'data' must be an array of objects, got {}",
            json_type_name(data)
        )));
    };
    // The records are flattened first, with their full keys, so the JSON of the flattened
    // records is counted as well as the CSV text: many records repeating long keys make a
    // short CSV but a large flattening.
    let mut flattened = OutputBudget::new(max_output_bytes);
    flattened.add(2);
    // Each row holds its cells by column, so writing it needs no lookup by key.
    let mut rows: Vec<Vec<(usize, String)>> = Vec::with_capacity(items.len());
    let mut header: Vec<String> = Vec::new();
    let mut columns: HashMap<String, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(ToolError::new(format!(
                "item at index {index} is not an object (got {})",
                json_type_name(item)
            )));
        }
        flattened.add(usize::from(index > 0));
        let flat = flatten_value(item, DEFAULT_SEPARATOR, &mut flattened)
            .map_err(|err| ToolError::new(format!("item at index {index}: {}", err.message)))?;
        let Some(flat) = flat else {
            // Over the budget: only count the rest.
            rows = Vec::new();
            continue;
        };
        let mut row = Vec::with_capacity(flat.len());
        for (key, value) in flat {
            let column = match columns.get(&key) {
                Some(column) => *column,
                None => {
                    let column = header.len();
                    header.push(key.clone());
                    columns.insert(key, column);
                    column
                }
            };
            let text = match value {
                Value::String(text) => text,
                other => cell_text(&other),
            };
            row.push((column, text));
        }
        rows.push(row);
    }
    flattened.check("the flattened records (as JSON)")?;
    drop(columns);
    if header.is_empty() {
        return Ok(String::new());
    }
    // A first key starting with U+FEFF would open the text with what CSV readers take for a
    // byte-order mark and drop; a quoted header keeps the key.
    let quote_header = header[0].starts_with('\u{feff}');
    let mut csv_len = OutputBudget::new(max_output_bytes);
    csv_len.add(csv_row_len(
        header.iter().map(String::as_str),
        header.len(),
        delimiter,
        quote_header,
    ));
    for row in &rows {
        csv_len.add(csv_row_len(
            row.iter().map(|(_, text)| text.as_str()),
            header.len(),
            delimiter,
            false,
        ));
    }
    csv_len.check("the CSV text")?;
    let expected_len = csv_len.size();
    let csv_error = |err: csv::Error| ToolError::new(format!("cannot write CSV: {err}"));
    let header_quotes = if quote_header {
        csv::QuoteStyle::Always
    } else {
        csv::QuoteStyle::Necessary
    };
    let mut head = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .quote_style(header_quotes)
        .from_writer(Vec::with_capacity(expected_len));
    head.write_record(&header).map_err(csv_error)?;
    let head = head
        .into_inner()
        .map_err(|err| ToolError::new(format!("cannot write CSV: {err}")))?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(head);
    let mut cells: Vec<&str> = Vec::with_capacity(header.len());
    for row in &rows {
        cells.clear();
        cells.resize(header.len(), "");
        for (column, text) in row {
            cells[*column] = text;
        }
        writer.write_record(&cells).map_err(csv_error)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| ToolError::new(format!("cannot write CSV: {err}")))?;
    debug_assert_eq!(bytes.len(), expected_len, "CSV length counted wrongly");
    String::from_utf8(bytes).map_err(|err| ToolError::new(format!("CSV is not UTF-8: {err}")))
}

/// A JSON number literal (no leading '+', '.', or leading zeros).
fn looks_like_json_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_start = i;
    let int_digits = digits(&mut i);
    if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
        return false;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

/// The JSON value for a CSV cell when type inference is on.
fn infer_cell(text: &str) -> Value {
    match text {
        "" => return Value::Null,
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if !looks_like_json_number(text) {
        return Value::String(text.to_string());
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        if let Ok(int) = text.parse::<i64>() {
            return json!(int);
        }
        if let Ok(int) = text.parse::<u64>() {
            return json!(int);
        }
        // Too big to be exact: keep the digits.
        return Value::String(text.to_string());
    }
    match text.parse::<f64>() {
        Ok(float) if float.is_finite() => json!(float),
        _ => Value::String(text.to_string()),
    }
}

/// The 1-based line on which the record the CSV reader was at `byte` starts.
///
/// The reader reports where it resumed after the previous record, which can
/// be before skipped blank lines or inside a CRLF pair, so line breaks are
/// skipped forward first; then `\n`, `\r\n` and a lone `\r` each count as
/// one line break (including those inside quoted fields).
fn record_line(text: &str, byte: u64) -> u64 {
    let bytes = text.as_bytes();
    let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
        start += 1;
    }
    let before = &bytes[..start];
    let breaks = before
        .iter()
        .enumerate()
        .filter(|(i, b)| match b {
            b'\n' => true,
            b'\r' => before.get(i + 1) != Some(&b'\n'),
            _ => false,
        })
        .count();
    breaks as u64 + 1
}

fn csv_to_records(
    text: &str,
    delimiter: u8,
    infer_types: bool,
    max_output_bytes: usize,
) -> Result<Value, ToolError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let line_of = |pos: &csv::Position| format!(" at line {}", record_line(text, pos.byte()));
    let describe = |err: csv::Error| match err.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => {
            let place = pos.as_ref().map(line_of).unwrap_or_default();
            ToolError::new(format!(
                "malformed CSV{place}: expected {expected_len} fields as in the header row, \
                 found {len}"
            ))
        }
        _ => {
            let place = err.position().map(line_of).unwrap_or_default();
            ToolError::new(format!("malformed CSV{place}: {err}"))
        }
    };
    let header_record = reader.headers().map_err(describe)?.clone();
    // The names once as a list: iterating a record checks its text again in debug builds.
    let header: Vec<&str> = header_record.iter().collect();
    let mut names = HashSet::new();
    for name in &header {
        if !names.insert(name) {
            return Err(ToolError::new(format!(
                "duplicate column name '{name}' in the header row"
            )));
        }
    }
    // Every row repeats the header names as keys, so the result is counted as it is built:
    // a few long names over many short rows would otherwise make a huge result.
    let mut budget = OutputBudget::new(max_output_bytes);
    // The brackets of the array, and for each row its braces, every `"name":` and the
    // commas between them.
    budget.add(2);
    let row_keys_len = 2
        + header.len().saturating_sub(1)
        + header
            .iter()
            .map(|name| json_str_len(name) + 3)
            .sum::<usize>();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(describe)?;
        budget.add(usize::from(index > 0) + row_keys_len);
        let mut object = Map::new();
        for (name, cell) in header.iter().zip(record.iter()) {
            let value = if infer_types {
                infer_cell(cell)
            } else {
                Value::String(cell.to_string())
            };
            budget.add(json_len(&value));
            if !budget.exceeded() {
                object.insert(name.to_string(), value);
            }
        }
        if budget.exceeded() {
            // Over the budget: only count the rest.
            rows = Vec::new();
        } else {
            rows.push(Value::Object(object));
        }
    }
    budget.check("the result (as JSON)")?;
    Ok(Value::Array(rows))
}

/// Parses a delimiter argument: exactly one ASCII character that is not a
/// quote, carriage return or line feed. Absent means a comma.
fn parse_delimiter(map: &Map<String, Value>) -> Result<u8, ToolError> {
    let Some(text) = optional_str(map, "delimiter")? else {
        return Ok(b',');
    };
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\r' | '\n') => Ok(c as u8),
        (Some(c), None) if c.is_ascii() => Err(ToolError::new(format!(
            "delimiter {c:?} is not allowed: quotes and line breaks cannot separate fields"
        ))),
        _ => Err(ToolError::new(format!(
            "delimiter must be exactly one ASCII character, got {text:?}"
        ))),
    }
}

/// `json_to_csv`: an array of objects to CSV text.
#[derive(Debug, Clone, Copy)]
pub struct JsonToCsv {
    limits: BuiltinLimits,
}

impl JsonToCsv {
    pub fn new(limits: BuiltinLimits) -> Self {
        Self { limits }
    }
}

impl BuiltinTool for JsonToCsv {
    fn name(&self) -> &'static str {
        "json_to_csv"
    }

    fn description(&self) -> &'static str {
        "Convert a JSON array of objects (records) into CSV text. The header row is the union \
         of all keys in first-seen order; nested objects are flattened into dotted column names \
         (address.city) and arrays into indexed ones (tags.0, tags.1); missing values and null \
         become empty cells. Fields containing the delimiter, quotes or line breaks are quoted \
         as in RFC 4180. Optional single-character delimiter such as ';' or a tab. \
         Returns {\"csv\": text}."
    }

    fn category(&self) -> &'static str {
        "data"
    }

    fn tags(&self) -> &'static [&'static str] {
        &[
            "json",
            "csv",
            "convert",
            "export",
            "table",
            "spreadsheet",
            "flatten",
        ]
    }

    fn input_schema(&self) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": "An array of JSON objects to write as CSV rows.",
            "properties": {
                "data": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "The records: each object becomes one CSV row."
                },
                "delimiter": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1,
                    "default": ",",
                    "description": "Field delimiter: one ASCII character other than a quote or line break (default ',')."
                }
            },
            "required": ["data"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Option<Value> {
        Some(json!({
            "type": "object",
            "properties": {
                "csv": {
                    "type": "string",
                    "description": "The CSV text: a header row then one row per record, each ending in a newline; empty when there are no columns."
                }
            },
            "required": ["csv"]
        }))
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let map = object_args(args, &["data", "delimiter"])?;
        check_serialized_size(args, self.limits.max_input_bytes)?;
        let data = required(map, "data")?;
        let delimiter = parse_delimiter(map)?;
        let csv = records_to_csv(data, delimiter, self.limits.max_output_bytes)?;
        Ok(json!({ "csv": csv }))
    }
}

/// `csv_to_json`: CSV text with a header row to an array of objects.
#[derive(Debug, Clone, Copy)]
pub struct CsvToJson {
    limits: BuiltinLimits,
}

impl CsvToJson {
    pub fn new(limits: BuiltinLimits) -> Self {
        Self { limits }
    }
}

impl BuiltinTool for CsvToJson {
    fn name(&self) -> &'static str {
        "csv_to_json"
    }

    fn description(&self) -> &'static str {
        "Parse CSV text whose first row is a header into a JSON array of objects, one per row, \
         keyed by column name (names are used as-is, not un-flattened). Handles RFC 4180 \
         quoting, embedded commas, quotes and line breaks, and a custom single-character \
         delimiter (';', tab, '|'). With infer_types, cells that are JSON-style numbers become \
         numbers, true/false become booleans and empty cells become null; otherwise every cell \
         is a string. Rows with a different number of fields are reported with their line \
         number. Returns {\"data\": [objects]}."
    }

    fn category(&self) -> &'static str {
        "data"
    }

    fn tags(&self) -> &'static [&'static str] {
        &[
            "csv",
            "json",
            "convert",
            "parse",
            "import",
            "table",
            "spreadsheet",
        ]
    }

    fn input_schema(&self) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": "CSV text with a header row.",
            "properties": {
                "csv": {
                    "type": "string",
                    "description": "The CSV text; the first row names the columns."
                },
                "delimiter": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1,
                    "default": ",",
                    "description": "Field delimiter: one ASCII character other than a quote or line break (default ',')."
                },
                "infer_types": {
                    "type": "boolean",
                    "default": false,
                    "description": "Convert numbers, true/false and empty cells (to null) instead of keeping every cell as a string."
                }
            },
            "required": ["csv"],
            "additionalProperties": false
        })
    }

    fn output_schema(&self) -> Option<Value> {
        Some(json!({
            "type": "object",
            "properties": {
                "data": {
                    "type": "array",
                    "items": {"type": "object"},
                    "description": "One object per CSV row, keyed by the header names."
                }
            },
            "required": ["data"]
        }))
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let map = object_args(args, &["csv", "delimiter", "infer_types"])?;
        check_serialized_size(args, self.limits.max_input_bytes)?;
        let text = required_str(map, "csv")?;
        let delimiter = parse_delimiter(map)?;
        let infer_types = optional_bool(map, "infer_types")?.unwrap_or(false);
        let records = csv_to_records(text, delimiter, infer_types, self.limits.max_output_bytes)?;
        Ok(json!({ "data": records }))
    }
}
#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
