//! Flattening nested JSON to a single level of separator-joined keys, and back
//! (`flatten_json`, `unflatten_json`; `json_to_csv` flattens its records the same way).
//!
//! Rules:
//! - nested object keys are joined with the separator (`a.b`), array elements
//!   use their index as the key (`tags.0`);
//! - empty objects and arrays are kept as leaf values `{}` and `[]`, so they
//!   survive a round trip;
//! - a key that itself contains the separator is ambiguous: `{"a.b": 1}` and
//!   `{"a": {"b": 1}}` flatten to the same key. When both occur in one
//!   document that is an error; otherwise unflattening splits such a key, so
//!   choose a separator that does not occur in the keys;
//! - unflattening turns a group of keys into an array only when they are
//!   exactly `0..n` written without leading zeros; so an object whose keys are
//!   exactly "0", "1", ... comes back as an array. A top-level empty array
//!   flattens to `{}`, which unflattens to `{}`.

use std::{collections::HashMap, fmt::Write as _};

use serde_json::{Map, Value, json};

use crate::builtins::{
    BuiltinLimits, BuiltinTool, ToolError,
    args::{check_serialized_size, json_type_name, object_args, optional_str, required},
    output::{OutputBudget, json_len, json_str_len},
};

/// The deepest nesting the transforms accept or produce.
pub const MAX_DEPTH: usize = 128;

pub(super) const DEFAULT_SEPARATOR: &str = ".";

fn separator_arg(map: &Map<String, Value>) -> Result<&str, ToolError> {
    let separator = optional_str(map, "separator")?.unwrap_or(DEFAULT_SEPARATOR);
    if separator.is_empty() {
        return Err(ToolError::new("separator must not be empty"));
    }
    Ok(separator)
}

fn too_deep() -> ToolError {
    ToolError::new(format!(
        "data is nested too deeply (more than {MAX_DEPTH} levels)"
    ))
}

/// Flattens one document into a map of separator-joined keys, counting the compact JSON
/// of the map against an output budget before each entry is added.
struct Flattener<'a> {
    separator: &'a str,
    separator_json_len: usize,
    /// The key of the node being visited, grown and cut back as the walk goes down and up,
    /// so no key is built before its entry is known to fit.
    key: String,
    /// `json_str_len(&key)`, kept up to date as the key changes.
    key_json_len: usize,
    entries: usize,
    /// `None` once the budget is exceeded: from then on entries are only counted.
    out: Option<Map<String, Value>>,
    budget: &'a mut OutputBudget,
}

impl Flattener<'_> {
    fn walk(&mut self, value: &Value, depth: usize) -> Result<(), ToolError> {
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        match value {
            Value::Object(object) if !object.is_empty() => {
                for (key, child) in object {
                    self.visit(child, depth, |path| path.push_str(key))?;
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (index, child) in items.iter().enumerate() {
                    self.visit(child, depth, |path| {
                        // Writing to a String cannot fail.
                        let _ = write!(path, "{index}");
                    })?;
                }
            }
            // A top-level empty object or array has no leaves.
            _ if depth == 0 => {}
            leaf => self.add_leaf(leaf)?,
        }
        Ok(())
    }

    /// Walks `child` with the key extended by the segment `push_segment` appends.
    fn visit(
        &mut self,
        child: &Value,
        depth: usize,
        push_segment: impl FnOnce(&mut String),
    ) -> Result<(), ToolError> {
        let (key_len, key_json_len) = (self.key.len(), self.key_json_len);
        if depth > 0 {
            self.key.push_str(self.separator);
            self.key_json_len += self.separator_json_len;
        }
        let segment_start = self.key.len();
        push_segment(&mut self.key);
        self.key_json_len += json_str_len(&self.key[segment_start..]);
        let walked = self.walk(child, depth + 1);
        self.key.truncate(key_len);
        self.key_json_len = key_json_len;
        walked
    }

    fn add_leaf(&mut self, leaf: &Value) -> Result<(), ToolError> {
        // `"key":value`, after a comma unless it is the first entry.
        let entry = usize::from(self.entries > 0) + self.key_json_len + 3 + json_len(leaf);
        self.entries += 1;
        self.budget.add(entry);
        if self.budget.exceeded() {
            self.out = None;
        }
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        if out.contains_key(&self.key) {
            return Err(ToolError::new(format!(
                "key collision: '{}' is produced twice; a key contains the separator '{}', \
                 so use another separator",
                self.key, self.separator
            )));
        }
        out.insert(self.key.clone(), leaf.clone());
        Ok(())
    }
}

/// Flattens an object or array into a map of separator-joined keys, adding the length of
/// the map as compact JSON to `budget`. `None` when the budget is exceeded (before or
/// during the call): then the map is not built, only counted to its end.
pub(super) fn flatten_value(
    value: &Value,
    separator: &str,
    budget: &mut OutputBudget,
) -> Result<Option<Map<String, Value>>, ToolError> {
    if !matches!(value, Value::Object(_) | Value::Array(_)) {
        return Err(ToolError::new(format!(
            "data must be a JSON object or array, got {}",
            json_type_name(value)
        )));
    }
    // The braces.
    budget.add(2);
    let mut flattener = Flattener {
        separator,
        separator_json_len: json_str_len(separator),
        key: String::new(),
        key_json_len: 0,
        entries: 0,
        out: (!budget.exceeded()).then(Map::new),
        budget,
    };
    flattener.walk(value, 0)?;
    Ok(flattener.out)
}

/// A node of the tree rebuilt by unflattening.
enum Tree {
    Leaf(Value),
    Branch(Branch),
}

/// Children in first-seen order.
#[derive(Default)]
struct Branch {
    order: Vec<String>,
    children: HashMap<String, Tree>,
}

impl Branch {
    fn insert(&mut self, key: &str, value: &Value, separator: &str) -> Result<(), ToolError> {
        let segments: Vec<&str> = key.split(separator).collect();
        if segments.len() > MAX_DEPTH {
            return Err(too_deep());
        }
        let conflict = |upto: usize| {
            ToolError::new(format!(
                "conflicting keys: '{}' holds a value and is also the parent of '{key}'",
                segments[..=upto].join(separator)
            ))
        };
        let (last, parents) = segments
            .split_last()
            .ok_or_else(|| ToolError::new("empty key path"))?;
        let mut node = self;
        for (index, segment) in parents.iter().enumerate() {
            let child = match node.children.entry((*segment).to_string()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    node.order.push((*segment).to_string());
                    entry.insert(Tree::Branch(Branch::default()))
                }
            };
            match child {
                Tree::Branch(branch) => node = branch,
                Tree::Leaf(_) => return Err(conflict(index)),
            }
        }
        if node.children.contains_key(*last) {
            return Err(ToolError::new(format!(
                "conflicting keys: '{key}' holds a value and is also the parent of other keys"
            )));
        }
        node.order.push((*last).to_string());
        node.children
            .insert((*last).to_string(), Tree::Leaf(value.clone()));
        Ok(())
    }

    fn into_value(mut self) -> Value {
        let count = self.order.len();
        let indices: Option<Vec<usize>> = self
            .order
            .iter()
            .map(|key| canonical_index(key).filter(|index| *index < count))
            .collect();
        // Keys are unique, so `count` distinct indices below `count` are exactly 0..count.
        if let Some(indices) = indices.filter(|_| count > 0) {
            let mut items = vec![Value::Null; count];
            for (key, index) in self.order.iter().zip(indices) {
                if let Some(child) = self.children.remove(key) {
                    items[index] = child.into_value();
                }
            }
            return Value::Array(items);
        }
        let mut object = Map::new();
        for key in self.order {
            if let Some(child) = self.children.remove(&key) {
                object.insert(key, child.into_value());
            }
        }
        Value::Object(object)
    }
}

impl Tree {
    fn into_value(self) -> Value {
        match self {
            Tree::Leaf(value) => value,
            Tree::Branch(branch) => branch.into_value(),
        }
    }
}

/// A decimal array index without sign or leading zeros ("0", "7", "12").
fn canonical_index(key: &str) -> Option<usize> {
    let well_formed = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if well_formed { key.parse().ok() } else { None }
}

fn unflatten_value(flat: &Map<String, Value>, separator: &str) -> Result<Value, ToolError> {
    let mut root = Branch::default();
    for (key, value) in flat {
        root.insert(key, value, separator)?;
    }
    if root.order.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    Ok(root.into_value())
}

/// `flatten_json`: nested JSON to one level of joined keys.
#[derive(Debug, Clone, Copy)]
pub struct FlattenJson {
    limits: BuiltinLimits,
}

impl FlattenJson {
    pub fn new(limits: BuiltinLimits) -> Self {
        Self { limits }
    }
}

impl BuiltinTool for FlattenJson {
    fn name(&self) -> &'static str {
        "flatten_json"
    }

    fn description(&self) -> &'static str {
        "Flatten a nested JSON object or array into a single-level object whose keys are paths \
         joined by a separator (default '.'), with array indices as path segments: \
         {\"a\": {\"b\": [1, {\"c\": 2}]}} becomes {\"a.b.0\": 1, \"a.b.1.c\": 2}. Empty \
         objects and arrays are kept as {} and [] values so unflatten_json restores the \
         original exactly. Keys that already contain the separator are ambiguous; a clash \
         is an error. Returns {\"result\": flat object}."
    }

    fn category(&self) -> &'static str {
        "data"
    }

    fn tags(&self) -> &'static [&'static str] {
        &["json", "flatten", "nested", "keys", "paths", "transform"]
    }

    fn input_schema(&self) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": "A nested JSON document to flatten.",
            "properties": {
                "data": {
                    "anyOf": [{"type": "object"}, {"type": "array"}],
                    "description": "The JSON object or array to flatten."
                },
                "separator": {
                    "type": "string",
                    "minLength": 1,
                    "default": ".",
                    "description": "The string placed between path segments (default '.'); pick one that does not occur in the keys."
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
                "result": {
                    "type": "object",
                    "description": "The flat object: path keys to scalar values, {} or []."
                }
            },
            "required": ["result"]
        }))
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let map = object_args(args, &["data", "separator"])?;
        check_serialized_size(args, self.limits.max_input_bytes)?;
        let data = required(map, "data")?;
        let separator = separator_arg(map)?;
        let mut budget = OutputBudget::new(self.limits.max_output_bytes);
        let flat = flatten_value(data, separator, &mut budget)?;
        budget.check("the flattened object (as JSON)")?;
        Ok(json!({ "result": flat.unwrap_or_default() }))
    }
}

/// `unflatten_json`: joined keys back to nested JSON.
#[derive(Debug, Clone, Copy)]
pub struct UnflattenJson {
    limits: BuiltinLimits,
}

impl UnflattenJson {
    pub fn new(limits: BuiltinLimits) -> Self {
        Self { limits }
    }
}

impl BuiltinTool for UnflattenJson {
    fn name(&self) -> &'static str {
        "unflatten_json"
    }

    fn description(&self) -> &'static str {
        "Rebuild nested JSON from a flat object whose keys are paths joined by a separator \
         (default '.'), the inverse of flatten_json: {\"a.b.0\": 1, \"a.b.1.c\": 2} becomes \
         {\"a\": {\"b\": [1, {\"c\": 2}]}}. Numeric segments become arrays when they are \
         exactly 0..n, otherwise object keys. Every key is split at the separator. \
         Conflicting keys such as \"a\" and \"a.b\" are an error. Returns {\"result\": nested}."
    }

    fn category(&self) -> &'static str {
        "data"
    }

    fn tags(&self) -> &'static [&'static str] {
        &["json", "unflatten", "nested", "keys", "paths", "transform"]
    }

    fn input_schema(&self) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": "A flat JSON object with path keys.",
            "properties": {
                "data": {
                    "type": "object",
                    "description": "The flat object: each key is a path of segments joined by the separator."
                },
                "separator": {
                    "type": "string",
                    "minLength": 1,
                    "default": ".",
                    "description": "The string between path segments (default '.')."
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
                "result": {
                    "anyOf": [{"type": "object"}, {"type": "array"}],
                    "description": "The nested JSON document."
                }
            },
            "required": ["result"]
        }))
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let map = object_args(args, &["data", "separator"])?;
        check_serialized_size(args, self.limits.max_input_bytes)?;
        let data = required(map, "data")?;
        let Value::Object(flat) = data else {
            return Err(ToolError::new(format!(
                "argument 'data' must be an object, got {}",
                json_type_name(data)
            )));
        };
        let separator = separator_arg(map)?;
        Ok(json!({ "result": unflatten_value(flat, separator)? }))
    }
}
#[cfg(test)]
#[path = "flatten_tests.rs"]
mod tests;
