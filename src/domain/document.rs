//! What a tool says about itself to search: one rule for the text its embedding is made
//! from and for the fields full-text search reads.

use super::Tool;

/// What a tool's text says of one input parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter<'a> {
    pub name: &'a str,
    /// Its `title`, when that says more than the name (not "Repo Path" for `repo_path`).
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    /// The string values its `enum` allows (at most [`MAX_CHOICES`], each at most
    /// [`MAX_CHOICE_CHARS`] characters): `state: ["open", "closed"]` is how a tool says it
    /// closes issues, and `event: ["APPROVE", …]` that it approves pull requests.
    pub choices: Vec<&'a str>,
}

/// A parameter's allowed values beyond this many are left out of its text: a long list
/// (country codes, time zones) would crowd out what the tool does.
pub const MAX_CHOICES: usize = 16;
/// Allowed values longer than this are left out: they are data, not words of the task.
pub const MAX_CHOICE_CHARS: usize = 64;
/// A title longer than this is left out, as prose that belongs in the description.
const MAX_TITLE_CHARS: usize = 120;

/// How the tool text below is composed, part of the tag stored with each vector
/// ([`vector_model`]): a new version makes every stored vector stale, and the background
/// indexer re-embeds the catalogue as it does for a new model. 2: parameter titles and
/// allowed values.
const TOOL_TEXT_VERSION: u32 = 2;

/// The tag stored with a tool's vectors and compared when searching: the embedder's model
/// and the version of the tool text it read. Vectors of another model, or of an older text,
/// are re-made in the background.
pub fn vector_model(model_id: &str) -> String {
    format!("{model_id}#text{TOOL_TEXT_VERSION}")
}

/// The tags of the vectors this model made from earlier tool texts: the model's id alone
/// (text 1, before the tag named a version), then `#text2` and on, below the current one.
/// They compare with the current ones (one model made both); searches read them while the
/// indexer is making them again.
pub fn earlier_vector_models(model_id: &str) -> Vec<String> {
    std::iter::once(model_id.to_owned())
        .chain((2..TOOL_TEXT_VERSION).map(|version| format!("{model_id}#text{version}")))
        .collect()
}

/// The input parameters a tool describes, in its schema's order.
pub fn parameters(tool: &Tool) -> impl Iterator<Item = Parameter<'_>> {
    tool.input_schema
        .get("properties")
        .and_then(|p| p.as_object())
        .into_iter()
        .flatten()
        .map(|(name, spec)| {
            let title = spec
                .get("title")
                .and_then(|t| t.as_str())
                .map(str::trim)
                .filter(|t| {
                    !t.is_empty() && !same_words(t, name) && t.chars().count() <= MAX_TITLE_CHARS
                });
            let choices = spec
                .get("enum")
                .and_then(|e| e.as_array())
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str())
                .filter(|value| {
                    !value.trim().is_empty() && value.chars().count() <= MAX_CHOICE_CHARS
                })
                .take(MAX_CHOICES)
                .collect();
            Parameter {
                name: name.as_str(),
                title,
                description: spec.get("description").and_then(|d| d.as_str()),
                choices,
            }
        })
}

/// Whether a title only spells the name another way: "Repo Path" for `repo_path`,
/// "Max Results" for `maxResults`.
fn same_words(title: &str, name: &str) -> bool {
    let letters = |text: &str| -> Vec<char> {
        text.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    letters(title) == letters(name)
}

/// The parts of a tool full-text search reads, each under the name `explain` reports:
/// `name`, `tags`, `description` and `parameters` (their names, titles, descriptions and
/// allowed values).
pub fn searchable_fields(tool: &Tool) -> [(&'static str, String); 4] {
    let mut parameter_text = String::new();
    for parameter in parameters(tool) {
        for part in std::iter::once(parameter.name)
            .chain(parameter.title)
            .chain(parameter.description)
            .chain(parameter.choices)
        {
            parameter_text.push_str(part);
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

/// The text an embedding is made from: name, description, tags, and for each input
/// parameter its name, title, description and allowed values, one line each
/// (`- state (State): New state [open, closed]`).
pub fn embedded_text(tool: &Tool) -> String {
    let mut text = format!("{}: {}", tool.name, tool.description);
    if !tool.tags.is_empty() {
        text.push_str("\nTags: ");
        text.push_str(&tool.tags.join(", "));
    }
    for parameter in parameters(tool) {
        text.push_str("\n- ");
        text.push_str(parameter.name);
        if let Some(title) = parameter.title {
            text.push_str(" (");
            text.push_str(title);
            text.push(')');
        }
        if let Some(description) = parameter.description {
            text.push_str(": ");
            text.push_str(description);
        }
        if !parameter.choices.is_empty() {
            text.push_str(" [");
            text.push_str(&parameter.choices.join(", "));
            text.push(']');
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
                "city": {"type": "string", "description": "City name", "title": "City"},
                "units": {"type": "string", "title": "Unit system",
                          "enum": ["metric", "imperial", 3, ""]}
            }}),
            ..Tool::example("weather.now")
        };
        assert_eq!(
            embedded_text(&tool),
            "weather.now: Current weather\nTags: weather, forecast\n- city: City name\n\
             - units (Unit system) [metric, imperial]"
        );
        assert_eq!(description_text(&tool), "Current weather");
        let fields = searchable_fields(&tool);
        assert_eq!(
            fields[3],
            (
                "parameters",
                "city City name units Unit system metric imperial ".to_owned()
            )
        );
        assert_eq!(fields[1], ("tags", "weather forecast".to_owned()));
    }

    #[test]
    fn long_lists_of_allowed_values_and_titles_that_add_nothing_are_left_out() {
        let many: Vec<String> = (0..40).map(|n| format!("value{n}")).collect();
        let tool = Tool {
            input_schema: json!({"type": "object", "properties": {
                "zone": {"type": "string", "enum": many},
                "blob": {"type": "string", "enum": ["x".repeat(MAX_CHOICE_CHARS + 1), "short"]},
                "note": {"type": "string", "title": "t".repeat(121)},
                "repo_path": {"type": "string", "title": "Repo Path"},
                "maxResults": {"type": "integer", "title": "Max results"},
                "odd": "not a schema"
            }}),
            ..Tool::example("clock.set")
        };
        let parameters: Vec<Parameter> = parameters(&tool).collect();
        let zone = parameters.iter().find(|p| p.name == "zone").unwrap();
        assert_eq!(zone.choices.len(), MAX_CHOICES);
        assert_eq!(zone.choices[0], "value0");
        let blob = parameters.iter().find(|p| p.name == "blob").unwrap();
        assert_eq!(blob.choices, ["short"]);
        let note = parameters.iter().find(|p| p.name == "note").unwrap();
        assert_eq!(note.title, None);
        for respelt in ["repo_path", "maxResults"] {
            let parameter = parameters.iter().find(|p| p.name == respelt).unwrap();
            assert_eq!(parameter.title, None, "{respelt}: the name again");
        }
        let odd = parameters.iter().find(|p| p.name == "odd").unwrap();
        assert_eq!(
            (odd.title, odd.description, odd.choices.len()),
            (None, None, 0)
        );
    }

    #[test]
    fn the_vector_tag_names_the_model_and_the_text_version() {
        assert_eq!(
            vector_model("local:all-MiniLM-L6-v2"),
            "local:all-MiniLM-L6-v2#text2"
        );
        assert_eq!(
            earlier_vector_models("local:all-MiniLM-L6-v2"),
            ["local:all-MiniLM-L6-v2"]
        );
    }
}
