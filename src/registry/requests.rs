//! What callers ask of the registry, shared by the REST routes and the MCP meta tools.
//!
//! The agents' requests (`find_tool`, `list_tools`, `call_tool`) derive both their OpenAPI
//! schema and their JSON Schema: the MCP meta tools declare exactly what the REST routes
//! accept, because both come from these types. Each checks itself into what the registry
//! runs (`into_search`, `into_query`, `arguments_object`), naming the field at fault.

use serde::Deserialize;
use serde_json::Value;

use super::search::{SearchMode, SearchRequest};
use crate::domain::{Implementation, Page, RegistryError, ToolFilter, listing::page, validation};

/// A tool definition as an operator submits it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "weather.current",
    "description": "Current weather for a city",
    "category": "weather",
    "tags": ["weather"],
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "implementation": {"kind": "http", "url": "https://weather.example/now", "timeout_ms": 5000}
}))]
pub struct NewTool {
    /// Unique.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,128}$")]
    pub name: String,
    #[schema(min_length = 1, max_length = 8000)]
    pub description: String,
    /// Default `general`.
    #[serde(default)]
    #[schema(max_length = 128)]
    pub category: Option<String>,
    #[serde(default)]
    #[schema(max_items = 32)]
    pub tags: Vec<String>,
    #[serde(default = "empty_object_schema")]
    pub input_schema: Value,
    #[serde(default)]
    pub output_schema: Option<Value>,
    #[serde(default)]
    pub version: Option<String>,
    pub implementation: Implementation,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// When a tool of this name exists: `true` updates it with this definition (its
    /// version, when given, must not go down); `false` (the default) answers 409.
    #[serde(default)]
    pub upsert: bool,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

fn yes() -> bool {
    true
}

/// A partial update: fields that are present replace the stored ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub tags: Option<Vec<String>>,
    pub input_schema: Option<Value>,
    /// `null` clears the output schema; absence keeps it.
    #[serde(default, deserialize_with = "present_or_null")]
    pub output_schema: Option<Option<Value>>,
    pub version: Option<String>,
    pub implementation: Option<Implementation>,
    pub metadata: Option<Value>,
    pub is_active: Option<bool>,
}

fn present_or_null<'de, D>(deserializer: D) -> Result<Option<Option<Value>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    Ok(Some(if value.is_null() { None } else { Some(value) }))
}

pub const MAX_FIND_LIMIT: u32 = 100;
/// The cosine's share in hybrid fusion: the best measured over both development sets
/// (Seal-Tools dev and eval/mcp_queries.jsonl), see the quality table of docs/search.md.
pub const DEFAULT_VECTOR_WEIGHT: f64 = 0.4;

/// A find_tool request, shared with MCP's `find_tool` meta tool (whose input schema is
/// derived from this type).
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"query": "open an issue on a GitHub repository", "limit": 3}))]
pub struct FindToolRequest {
    /// The task in plain words.
    #[schema(min_length = 1, max_length = 2000)]
    #[schemars(length(min = 1, max = 2000))]
    query: String,
    /// How many tools to return (default 5).
    #[schema(minimum = 1, maximum = 100)]
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// Hits less relevant than this are left out (default 0): in semantic and hybrid mode
    /// the hit's cosine (a hybrid hit found by full text alone counts the lowest cosine of
    /// the vector candidates), in text mode its text score.
    #[schema(minimum = 0.0, maximum = 1.0)]
    #[schemars(range(min = 0.0, max = 1.0))]
    threshold: Option<f64>,
    /// Only tools of this category (any case; empty for all).
    category: Option<String>,
    /// How to match: hybrid (default), semantic or text.
    #[serde(default)]
    mode: SearchMode,
    /// Weight of the (calibrated) vector score in hybrid mode; the rest goes to full text
    /// (default 0.4). Each step of a multi-step request starts from its square root. The
    /// weight used rises with what the best text candidate leaves uncovered, up to
    /// `w + (1 − w) · 0.6` (less below 0.4); 0 and 1 stay as asked.
    #[schema(minimum = 0.0, maximum = 1.0)]
    #[schemars(range(min = 0.0, max = 1.0))]
    vector_weight: Option<f64>,
    /// Say for each hit which query words matched which parts of the tool, the step of a
    /// multi-step request it answered, and each signal's raw and fused score.
    #[serde(default)]
    explain: bool,
}

impl FindToolRequest {
    pub fn into_search(self) -> Result<SearchRequest, RegistryError> {
        if validation::shows_nothing(&self.query) {
            return Err(RegistryError::invalid(
                "query",
                "query must hold visible text",
            ));
        }
        if self.query.chars().count() > validation::MAX_QUERY_CHARS {
            return Err(RegistryError::invalid(
                "query",
                format!(
                    "query must be at most {} characters",
                    validation::MAX_QUERY_CHARS
                ),
            ));
        }
        let limit = self.limit.unwrap_or(5);
        if !(1..=MAX_FIND_LIMIT).contains(&limit) {
            return Err(RegistryError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_FIND_LIMIT}"),
            ));
        }
        let unit = |field: &str, value: Option<f64>, default: f64| match value {
            None => Ok(default),
            // -0 is within the range: it is 0, and said so.
            Some(v) if (0.0..=1.0).contains(&v) => Ok(if v == 0.0 { 0.0 } else { v }),
            Some(_) => Err(RegistryError::invalid(
                field,
                format!("{field} must be between 0 and 1"),
            )),
        };
        Ok(SearchRequest {
            query: self.query,
            limit,
            threshold: unit("threshold", self.threshold, 0.0)?,
            category: category_filter(self.category),
            mode: self.mode,
            vector_weight: unit("vector_weight", self.vector_weight, DEFAULT_VECTOR_WEIGHT)?,
            explain: self.explain,
        })
    }
}

/// An empty category is no filter.
fn category_filter(category: Option<String>) -> Option<String> {
    category.filter(|c| !c.trim().is_empty())
}

/// A list_tools request, shared with MCP's `list_tools` meta tool (whose input schema is
/// derived from this type). Agents see active tools only; switched-off ones are listed on
/// `/admin/tools`.
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListToolsRequest {
    /// Only tools of this category (any case; empty for all).
    category: Option<String>,
    /// Tools carrying any of these tags.
    #[serde(default)]
    tags: Vec<String>,
    /// How many tools per page (default 50).
    #[schema(minimum = 1, maximum = 500)]
    #[schemars(range(min = 1, max = 500))]
    limit: Option<u32>,
    /// How many tools to skip (default 0).
    #[schema(maximum = 1_000_000)]
    #[schemars(range(max = 1_000_000))]
    offset: Option<u32>,
}

impl ListToolsRequest {
    pub fn into_query(self) -> Result<(ToolFilter, Page), RegistryError> {
        let page = page(self.limit, self.offset)?;
        let filter = ToolFilter {
            category: category_filter(self.category),
            tags: self.tags,
            active_only: true,
        };
        Ok((filter, page))
    }
}

/// A call_tool request, shared with MCP's `call_tool` meta tool (whose input schema is
/// derived from this type).
#[derive(Debug, Deserialize, utoipa::ToSchema, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "calculator", "arguments": {"expression": "(2+3)*4^2"}}))]
pub struct CallToolRequest {
    /// The tool's name, as find_tool or list_tools show it.
    pub name: String,
    /// The tool's arguments, checked against its `input_schema`.
    #[serde(default = "empty_object")]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

impl CallToolRequest {
    /// The arguments as an object. Some models send them as a string of JSON: that string
    /// is parsed.
    pub fn arguments_object(&self) -> Result<serde_json::Value, RegistryError> {
        let parsed = match &self.arguments {
            serde_json::Value::String(text) => serde_json::from_str(text).ok(),
            other => Some(other.clone()),
        };
        parsed.filter(serde_json::Value::is_object).ok_or_else(|| {
            RegistryError::invalid(
                "arguments",
                "arguments must be a JSON object (or a string holding one)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn find(body: Value) -> Result<SearchRequest, RegistryError> {
        serde_json::from_value::<FindToolRequest>(body)
            .expect("a well-formed request")
            .into_search()
    }

    fn field(result: Result<SearchRequest, RegistryError>) -> String {
        let err = result.expect_err("a validation error");
        err.invalid_field().expect("a field named").to_owned()
    }

    #[test]
    fn a_query_of_invisible_characters_is_empty() {
        for query in [
            "",
            "  \t\n",
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            " \u{FEFF} \u{200E}\u{00A0}\u{3000}",
            "\u{0}\u{7}",
            "\u{FE0F}\u{E0041}",
        ] {
            assert_eq!(field(find(json!({"query": query}))), "query", "{query:?}");
        }
        // Visible text around them is a query.
        for query in ["\u{200B}weather\u{FEFF}", "\u{1F600}\u{FE0F}\u{200D}", "?"] {
            assert!(find(json!({"query": query})).is_ok(), "{query:?}");
        }
    }

    #[test]
    fn negative_zero_weights_are_zero() {
        let search = find(json!({"query": "x", "vector_weight": -0.0, "threshold": -0.0})).unwrap();
        assert!(search.vector_weight == 0.0 && search.vector_weight.is_sign_positive());
        assert!(search.threshold == 0.0 && search.threshold.is_sign_positive());
        assert_eq!(
            field(find(json!({"query": "x", "vector_weight": -0.1}))),
            "vector_weight"
        );
    }
}
