//! A tool as the read routes serve it: encoded to JSON once and shared, so that a listing or
//! a search splices the bytes of each tool instead of reading and re-encoding it per request.
//!
//! Two views are served. Agents see what a tool does ([`AgentTool`]: everything but its
//! `implementation`), never how it is reached; operators see the whole tool with its secrets
//! redacted ([`AdminTool`]). The encoding keeps the implementation apart from the rest so
//! that the agent view is the stored bytes as they are.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, value::RawValue};
use uuid::Uuid;

use super::{Implementation, Tool, secrets};

#[derive(Clone)]
pub struct ServedTool(Arc<Encoded>);

struct Encoded {
    id: Uuid,
    /// Kept beside the JSON: search results break score ties by name.
    name: Box<str>,
    /// The tool without its implementation: what agents see.
    public: Box<RawValue>,
    /// The implementation as stored, secrets included: for running the tool only.
    implementation: Box<RawValue>,
    /// The metadata as stored, when the served one hides credentials (see
    /// `secrets::redacted_metadata`).
    stored_metadata: Option<Box<Value>>,
    /// The tool decoded, once per encoding and only for a tool that is called: each
    /// call reads it.
    decoded: std::sync::OnceLock<Arc<Tool>>,
}

/// A tool as agents see it: what it does and how to call it through the registry.
#[allow(dead_code)] // documents the agent view in the OpenAPI document
#[derive(utoipa::ToSchema)]
pub struct AgentTool {
    id: Uuid,
    name: String,
    description: String,
    category: String,
    tags: Vec<String>,
    input_schema: Value,
    output_schema: Option<Value>,
    version: String,
    metadata: Value,
    is_active: bool,
    embedding_model: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The fields of a tool but its implementation, in the order `Tool` has them.
#[derive(Serialize)]
struct Public<'a> {
    id: Uuid,
    name: &'a str,
    description: &'a str,
    category: &'a str,
    tags: &'a [String],
    input_schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_schema: Option<&'a Value>,
    version: &'a str,
    metadata: &'a Value,
    is_active: bool,
    embedding_model: Option<&'a str>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `{…public fields…, "implementation": …}` from the two halves.
fn splice(public: &str, implementation: &str) -> String {
    let open = public.strip_suffix('}').unwrap_or(public);
    format!("{open},\"implementation\":{implementation}}}")
}

impl ServedTool {
    pub fn encode(tool: &Tool) -> Result<Self, serde_json::Error> {
        let shown_metadata = secrets::redacted_metadata(&tool.metadata);
        let public = Public {
            id: tool.id,
            name: &tool.name,
            description: &tool.description,
            category: &tool.category,
            tags: &tool.tags,
            input_schema: &tool.input_schema,
            output_schema: tool.output_schema.as_ref(),
            version: &tool.version,
            metadata: shown_metadata.as_ref().unwrap_or(&tool.metadata),
            is_active: tool.is_active,
            embedding_model: tool.embedding_model.as_deref(),
            created_at: tool.created_at,
            updated_at: tool.updated_at,
        };
        Ok(Self(Arc::new(Encoded {
            id: tool.id,
            name: tool.name.as_str().into(),
            public: serde_json::value::to_raw_value(&public)?,
            implementation: serde_json::value::to_raw_value(&tool.implementation)?,
            stored_metadata: shown_metadata.map(|_| Box::new(tool.metadata.clone())),
            decoded: std::sync::OnceLock::new(),
        })))
    }

    pub fn id(&self) -> Uuid {
        self.0.id
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The agent view's JSON.
    pub fn json(&self) -> &str {
        self.0.public.get()
    }

    /// The tool itself, secrets included, for the few callers that need its fields (running
    /// it) rather than a view of it.
    pub fn decode(&self) -> Result<Tool, serde_json::Error> {
        let mut tool: Tool =
            serde_json::from_str(&splice(self.json(), self.0.implementation.get()))?;
        if let Some(metadata) = &self.0.stored_metadata {
            tool.metadata = (**metadata).clone();
        }
        Ok(tool)
    }

    /// The whole tool, decoded at its first call and shared by the calls after it.
    pub fn decoded(&self) -> Result<Arc<Tool>, serde_json::Error> {
        if let Some(tool) = self.0.decoded.get() {
            return Ok(tool.clone());
        }
        let tool = Arc::new(self.decode()?);
        Ok(self.0.decoded.get_or_init(|| tool).clone())
    }

    /// The operator view: the whole tool, its secrets redacted.
    pub fn admin(&self) -> AdminTool {
        AdminTool(self.clone())
    }

    /// Roughly the bytes this tool holds on to, for sizing a cache of them.
    pub fn weight(&self) -> usize {
        self.0.public.get().len()
            + self.0.implementation.get().len()
            + self.0.name.len()
            + self
                .0
                .stored_metadata
                .as_ref()
                .map_or(0, |metadata| metadata.to_string().len())
            + size_of::<Encoded>()
    }
}

impl From<&Tool> for ServedTool {
    fn from(tool: &Tool) -> Self {
        // A `Tool` is plain data (strings, JSON values, numbers): encoding cannot fail.
        Self::encode(tool).expect("a tool always encodes to JSON")
    }
}

/// Serializes the agent view: a served tool never shows its implementation unless asked
/// for the operator view.
impl Serialize for ServedTool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.public.serialize(serializer)
    }
}

/// Reads a whole tool (as `Tool` serializes).
impl<'de> Deserialize<'de> for ServedTool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tool = Tool::deserialize(deserializer)?;
        Self::encode(&tool).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for ServedTool {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
            && self.0.implementation.get() == other.0.implementation.get()
            && self.0.stored_metadata == other.0.stored_metadata
    }
}

impl fmt::Debug for ServedTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

/// A served tool in the operator view: the whole tool with secret header values and URL
/// credentials redacted (see `secrets`).
#[derive(Clone, Debug)]
pub struct AdminTool(ServedTool);

impl Serialize for AdminTool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let encoded = &self.0.0;
        let implementation: Implementation = serde_json::from_str(encoded.implementation.get())
            .map_err(serde::ser::Error::custom)?;
        let redacted =
            serde_json::to_string(&implementation.redacted()).map_err(serde::ser::Error::custom)?;
        let whole = RawValue::from_string(splice(encoded.public.get(), &redacted))
            .map_err(serde::ser::Error::custom)?;
        whole.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool() -> Tool {
        Tool {
            description: "Current weather for a city".into(),
            category: "weather".into(),
            tags: vec!["weather".into()],
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
            embedding_model: Some("hash-384".into()),
            ..Tool::example("weather.current")
        }
    }

    #[test]
    fn agents_never_see_the_implementation_and_operators_see_it_redacted() {
        let tool = Tool {
            implementation: Implementation::Http {
                url: "https://alice:pa55w0rd@api.example/v1?api_key=k3y&units=metric".into(),
                method: "POST".into(),
                headers: [("Authorization".to_owned(), "Bearer s3cret".to_owned())].into(),
                timeout_ms: None,
            },
            ..tool()
        };
        let served = ServedTool::from(&tool);
        let agent = serde_json::to_string(&served).unwrap();
        assert!(
            !agent.contains("implementation") && !agent.contains("api.example"),
            "{agent}"
        );
        let admin = serde_json::to_string(&served.admin()).unwrap();
        for secret in ["alice", "pa55w0rd", "s3cret", "k3y"] {
            assert!(!admin.contains(secret), "{secret} in {admin}");
        }
        assert!(
            admin.contains("units=metric") && admin.contains("api.example"),
            "{admin}"
        );
        assert_eq!(served.decode().unwrap(), tool);
    }

    #[test]
    fn a_called_tool_is_decoded_once_with_its_stored_secrets() {
        let tool = Tool {
            metadata: json!({"api_key": "k3y", "owner": "ops"}),
            ..tool()
        };
        let served = ServedTool::from(&tool);
        let first = served.decoded().unwrap();
        assert_eq!(*first, tool, "the stored metadata, not the redacted one");
        let again = served.clone().decoded().unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "decoded once, shared by its copies"
        );
    }

    #[test]
    fn serves_the_same_json_as_the_tool_and_decodes_back() {
        let tool = tool();
        let served = ServedTool::from(&tool);
        assert_eq!(served.id(), tool.id);
        assert_eq!(served.name(), tool.name);
        let mut agent_view = serde_json::to_value(&tool).unwrap();
        agent_view.as_object_mut().unwrap().remove("implementation");
        assert_eq!(serde_json::to_value(&served).unwrap(), agent_view);
        let nested = serde_json::to_value(json!({"tools": [&served]})).unwrap();
        assert_eq!(nested, json!({"tools": [agent_view]}));
        assert_eq!(served.decode().unwrap(), tool);
        assert_eq!(
            serde_json::to_value(served.admin()).unwrap(),
            serde_json::to_value(&tool).unwrap()
        );
        let read_back: ServedTool =
            serde_json::from_value(serde_json::to_value(&tool).unwrap()).unwrap();
        assert_eq!(read_back, served);
        assert!(served.weight() > served.json().len());
    }
}
