//! A tool as the read routes serve it: encoded to JSON once and shared, so that a listing or
//! a search splices the bytes of each tool instead of reading and re-encoding it per request.

use std::{fmt, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use uuid::Uuid;

use super::model::Tool;

#[derive(Clone)]
pub struct ServedTool(Arc<Encoded>);

struct Encoded {
    id: Uuid,
    /// Kept beside the JSON: search results break score ties by name.
    name: Box<str>,
    json: Box<RawValue>,
}

impl ServedTool {
    pub fn encode(tool: &Tool) -> Result<Self, serde_json::Error> {
        Ok(Self(Arc::new(Encoded {
            id: tool.id,
            name: tool.name.as_str().into(),
            json: serde_json::value::to_raw_value(tool)?,
        })))
    }

    pub fn id(&self) -> Uuid {
        self.0.id
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn json(&self) -> &str {
        self.0.json.get()
    }

    /// The tool itself, for the few callers that need its fields rather than its JSON.
    pub fn decode(&self) -> Result<Tool, serde_json::Error> {
        serde_json::from_str(self.json())
    }

    /// Roughly the bytes this tool holds on to, for sizing a cache of them.
    pub fn weight(&self) -> usize {
        self.0.json.get().len() + self.0.name.len() + size_of::<Encoded>()
    }
}

impl From<&Tool> for ServedTool {
    fn from(tool: &Tool) -> Self {
        // A `Tool` is plain data (strings, JSON values, numbers): encoding cannot fail.
        Self::encode(tool).expect("a tool always encodes to JSON")
    }
}

impl Serialize for ServedTool {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ServedTool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tool = Tool::deserialize(deserializer)?;
        Self::encode(&tool).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for ServedTool {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl fmt::Debug for ServedTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
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
    fn serves_the_same_json_as_the_tool_and_decodes_back() {
        let tool = tool();
        let served = ServedTool::from(&tool);
        assert_eq!(served.id(), tool.id);
        assert_eq!(served.name(), tool.name);
        assert_eq!(
            serde_json::to_value(&served).unwrap(),
            serde_json::to_value(&tool).unwrap()
        );
        let nested = serde_json::to_string(&json!({"tools": [&served]})).unwrap();
        assert_eq!(
            nested,
            serde_json::to_string(&json!({"tools": [&tool]})).unwrap()
        );
        assert_eq!(served.decode().unwrap(), tool);
        let read_back: ServedTool = serde_json::from_str(served.json()).unwrap();
        assert_eq!(read_back, served);
        assert!(served.weight() > served.json().len());
    }
}
