//! What a tool says about itself to search: one rule for the text its embedding is made
//! from and for the fields full-text search reads.

use super::Tool;

/// The input parameters a tool describes: each name with its description, if any.
pub fn parameters(tool: &Tool) -> impl Iterator<Item = (&str, Option<&str>)> {
    tool.input_schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
        .map(|(name, spec)| {
            (
                name.as_str(),
                spec.get("description").and_then(|d| d.as_str()),
            )
        })
}

/// The parts of a tool full-text search reads, each under the name `explain` reports:
/// `name`, `tags`, `description` and `parameters` (their names and descriptions).
pub fn searchable_fields(tool: &Tool) -> [(&'static str, String); 4] {
    let mut parameter_text = String::new();
    for (name, description) in parameters(tool) {
        parameter_text.push_str(name);
        parameter_text.push(' ');
        if let Some(description) = description {
            parameter_text.push_str(description);
            parameter_text.push(' ');
        }
    }
    [
        ("name", tool.name.clone()),
        ("tags", tool.tags.join(" ")),
        ("description", tool.description.clone()),
        ("parameters", parameter_text),
    ]
}

/// The text an embedding is made from: name, description, tags, and the names and
/// descriptions of the input parameters.
pub fn embedded_text(tool: &Tool) -> String {
    let mut text = format!("{}: {}", tool.name, tool.description);
    if !tool.tags.is_empty() {
        text.push_str("\nTags: ");
        text.push_str(&tool.tags.join(", "));
    }
    for (name, description) in parameters(tool) {
        text.push_str("\n- ");
        text.push_str(name);
        if let Some(description) = description {
            text.push_str(": ");
            text.push_str(description);
        }
    }
    text
}

/// The text of a tool's second vector: its description alone, so that a tool whose own
/// description reads as the query is not drowned by its name, parameters and tags (measured
/// against the name with the description and the description with tags: docs/search.md).
pub fn description_text(tool: &Tool) -> &str {
    &tool.description
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_embedded_text_and_the_searched_fields_say_the_same_things() {
        let tool = Tool {
            description: "Current weather".into(),
            tags: vec!["weather".into(), "forecast".into()],
            input_schema: json!({"type": "object", "properties": {
                "city": {"type": "string", "description": "City name"},
                "units": {"type": "string"}
            }}),
            ..Tool::example("weather.now")
        };
        assert_eq!(
            embedded_text(&tool),
            "weather.now: Current weather\nTags: weather, forecast\n- city: City name\n- units"
        );
        assert_eq!(description_text(&tool), "Current weather");
        let fields = searchable_fields(&tool);
        assert_eq!(
            fields[3],
            ("parameters", "city City name units ".to_owned())
        );
        assert_eq!(fields[1], ("tags", "weather forecast".to_owned()));
    }
}
