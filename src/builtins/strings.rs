//! Unicode-aware string tools: case conversion, reversal by grapheme cluster,
//! length in several units and word counting.

use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

use super::{
    BuiltinLimits, BuiltinTool, ToolError,
    args::{check_text_size, object_args, required_str},
};

/// Which string operation a [`StringTool`] performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringOperation {
    Uppercase,
    Lowercase,
    Reverse,
    Length,
    WordCount,
}

impl StringOperation {
    /// Every operation, in the order the tools are listed.
    pub const ALL: [StringOperation; 5] = [
        StringOperation::Uppercase,
        StringOperation::Lowercase,
        StringOperation::Reverse,
        StringOperation::Length,
        StringOperation::WordCount,
    ];
}

/// One string tool; the operation decides its name and behaviour.
#[derive(Debug, Clone, Copy)]
pub struct StringTool {
    operation: StringOperation,
    limits: BuiltinLimits,
}

impl StringTool {
    pub fn new(operation: StringOperation, limits: BuiltinLimits) -> Self {
        Self { operation, limits }
    }

    pub fn operation(&self) -> StringOperation {
        self.operation
    }

    fn text_description(&self) -> &'static str {
        match self.operation {
            StringOperation::Uppercase => "The text to convert to upper case.",
            StringOperation::Lowercase => "The text to convert to lower case.",
            StringOperation::Reverse => "The text to reverse.",
            StringOperation::Length => "The text to measure.",
            StringOperation::WordCount => "The text whose words are counted.",
        }
    }
}

/// Reverses text by extended grapheme cluster, so combining marks, emoji with
/// skin-tone modifiers, flags and ZWJ sequences stay intact.
fn reverse_graphemes(text: &str) -> String {
    text.graphemes(true).rev().collect()
}

impl BuiltinTool for StringTool {
    fn name(&self) -> &'static str {
        match self.operation {
            StringOperation::Uppercase => "string_uppercase",
            StringOperation::Lowercase => "string_lowercase",
            StringOperation::Reverse => "string_reverse",
            StringOperation::Length => "string_length",
            StringOperation::WordCount => "string_word_count",
        }
    }

    fn description(&self) -> &'static str {
        match self.operation {
            StringOperation::Uppercase => {
                "Convert text to UPPER CASE with full Unicode case mapping (locale-independent): \
                 one character may become several, e.g. German 'straße' becomes 'STRASSE', \
                 and Greek, Cyrillic and accented letters are handled. Turkish dotless 'ı' \
                 uppercases to 'I' and 'i' to 'I' (no Turkish locale rules). \
                 Returns {\"result\": text}."
            }
            StringOperation::Lowercase => {
                "Convert text to lower case with full Unicode case mapping (locale-independent): \
                 Greek capital sigma becomes final 'ς' at the end of a word, and Turkish dotted \
                 capital 'İ' (U+0130) becomes 'i' followed by U+0307 COMBINING DOT ABOVE, while \
                 'I' becomes 'i' rather than Turkish dotless 'ı'. Returns {\"result\": text}."
            }
            StringOperation::Reverse => {
                "Reverse text by user-perceived characters (Unicode extended grapheme clusters), \
                 so accented letters with combining marks, emoji with skin tones, flags and \
                 family/ZWJ emoji sequences stay intact instead of being split into code points. \
                 Returns {\"result\": reversed text}."
            }
            StringOperation::Length => {
                "Measure the length of text three ways: Unicode scalar values (characters), \
                 user-perceived characters (extended grapheme clusters, so 'é' written with a \
                 combining accent or a family emoji counts as 1) and UTF-8 bytes. Returns \
                 {\"characters\": n, \"graphemes\": n, \"bytes\": n}."
            }
            StringOperation::WordCount => {
                "Count the words in text using Unicode word boundaries (UAX #29): punctuation and \
                 whitespace are not words, contractions like \"can't\" and numbers like 3.14 \
                 count as one word, and scripts without spaces such as Chinese or Japanese count \
                 per character. Returns {\"words\": n}."
            }
        }
    }

    fn category(&self) -> &'static str {
        "text"
    }

    fn tags(&self) -> &'static [&'static str] {
        match self.operation {
            StringOperation::Uppercase => &["string", "text", "case", "uppercase", "unicode"],
            StringOperation::Lowercase => &["string", "text", "case", "lowercase", "unicode"],
            StringOperation::Reverse => &["string", "text", "reverse", "grapheme", "unicode"],
            StringOperation::Length => &["string", "text", "length", "count", "unicode"],
            StringOperation::WordCount => &["string", "text", "words", "count", "unicode"],
        }
    }

    fn input_schema(&self) -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "description": format!("Arguments for {}.", self.name()),
            "properties": {
                "text": {
                    "type": "string",
                    "description": self.text_description(),
                    "maxLength": self.limits.max_input_bytes,
                }
            },
            "required": ["text"],
            "additionalProperties": false,
        })
    }

    fn output_schema(&self) -> Option<Value> {
        let schema = match self.operation {
            StringOperation::Uppercase | StringOperation::Lowercase | StringOperation::Reverse => {
                json!({
                    "type": "object",
                    "properties": {
                        "result": {"type": "string", "description": "The transformed text."}
                    },
                    "required": ["result"],
                })
            }
            StringOperation::Length => json!({
                "type": "object",
                "properties": {
                    "characters": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Number of Unicode scalar values."
                    },
                    "graphemes": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Number of extended grapheme clusters."
                    },
                    "bytes": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Length in UTF-8 bytes."
                    }
                },
                "required": ["characters", "graphemes", "bytes"],
            }),
            StringOperation::WordCount => json!({
                "type": "object",
                "properties": {
                    "words": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Number of words by Unicode word boundaries."
                    }
                },
                "required": ["words"],
            }),
        };
        Some(schema)
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let map = object_args(args, &["text"])?;
        let text = required_str(map, "text")?;
        check_text_size("text", text, self.limits.max_input_bytes)?;
        Ok(match self.operation {
            StringOperation::Uppercase => json!({ "result": text.to_uppercase() }),
            StringOperation::Lowercase => json!({ "result": text.to_lowercase() }),
            StringOperation::Reverse => json!({ "result": reverse_graphemes(text) }),
            StringOperation::Length => json!({
                "characters": text.chars().count(),
                "graphemes": text.graphemes(true).count(),
                "bytes": text.len(),
            }),
            StringOperation::WordCount => json!({ "words": text.unicode_words().count() }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(operation: StringOperation) -> StringTool {
        StringTool::new(operation, BuiltinLimits::default())
    }

    fn run(operation: StringOperation, text: &str) -> Value {
        tool(operation)
            .execute(&json!({ "text": text }))
            .unwrap_or_else(|err| panic!("{operation:?} {text:?}: {err}"))
    }

    #[test]
    fn uppercase() {
        let cases = [
            ("", ""),
            ("hello", "HELLO"),
            ("straße", "STRASSE"),
            ("ﬁx", "FIX"),
            ("ǆ", "Ǆ"),
            ("ıi", "II"),
            ("ἀρετή", "ἈΡΕΤΉ"),
            ("привет мир", "ПРИВЕТ МИР"),
            ("mixed 123 ✓", "MIXED 123 ✓"),
            ("👍🏽 ok", "👍🏽 OK"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                run(StringOperation::Uppercase, input),
                json!({"result": expected}),
                "{input:?}"
            );
        }
    }

    #[test]
    fn lowercase() {
        let cases = [
            ("", ""),
            ("HELLO", "hello"),
            ("STRASSE", "strasse"),
            ("ẞ", "ß"),
            // Turkish: no locale rules; dotted capital I keeps its dot as a combining mark.
            ("İ", "i\u{307}"),
            ("İSTANBUL", "i\u{307}stanbul"),
            ("I", "i"),
            ("ı", "ı"),
            // Greek final sigma.
            ("ΟΔΟΣ", "οδος"),
            ("ΣΑΣ ΟΔΟΣ", "σας οδος"),
            ("ÀÉÎ", "àéî"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                run(StringOperation::Lowercase, input),
                json!({"result": expected}),
                "{input:?}"
            );
        }
    }

    #[test]
    fn reverse_keeps_grapheme_clusters() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
        let cases = [
            ("", String::new()),
            ("abc", "cba".to_string()),
            ("a", "a".to_string()),
            // 'e' + combining acute accent stays one unit.
            ("he\u{301}llo", "olle\u{301}h".to_string()),
            ("👍🏽x", "x👍🏽".to_string()),
            (&*format!("a{family}b"), format!("b{family}a")),
            ("🇩🇪🇫🇷", "🇫🇷🇩🇪".to_string()),
            ("\r\nx", "x\r\n".to_string()),
            ("日本語", "語本日".to_string()),
        ];
        for (input, expected) in cases {
            assert_eq!(
                run(StringOperation::Reverse, input),
                json!({"result": expected}),
                "{input:?}"
            );
        }
    }

    #[test]
    fn reverse_twice_is_identity() {
        for text in ["he\u{301}llo 👍🏽", "🇩🇪 ok", "a\u{200D}b", "x\u{308}\u{301}y"] {
            assert_eq!(reverse_graphemes(&reverse_graphemes(text)), text);
        }
    }

    #[test]
    fn length() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let cases = [
            ("", 0, 0, 0),
            ("abc", 3, 3, 3),
            ("é", 1, 1, 2),
            ("e\u{301}", 2, 1, 3),
            ("👍🏽", 2, 1, 8),
            (family, 5, 1, 18),
            ("日本", 2, 2, 6),
            ("a\r\nb", 4, 3, 4),
        ];
        for (input, characters, graphemes, bytes) in cases {
            assert_eq!(
                run(StringOperation::Length, input),
                json!({"characters": characters, "graphemes": graphemes, "bytes": bytes}),
                "{input:?}"
            );
        }
    }

    #[test]
    fn word_count() {
        let cases = [
            ("", 0),
            ("   ", 0),
            ("hello", 1),
            ("hello, world!", 2),
            ("The quick (\"brown\") fox can't jump 32.3 feet, right?", 9),
            ("--- ... !!!", 0),
            ("naïve café", 2),
            ("tab\tseparated\nlines", 3),
            ("日本語", 3),
            ("привет мир", 2),
        ];
        for (input, words) in cases {
            assert_eq!(
                run(StringOperation::WordCount, input),
                json!({"words": words}),
                "{input:?}"
            );
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let cases = [
            (json!({}), "missing required argument 'text'"),
            (json!({"text": 5}), "must be a string, got number"),
            (json!({"text": null}), "must be a string, got null"),
            (json!({"text": ["a"]}), "must be a string, got array"),
            (json!({"text": "a", "extra": 1}), "unknown argument 'extra'"),
            (json!("text"), "must be a JSON object"),
        ];
        for operation in StringOperation::ALL {
            for (args, fragment) in &cases {
                let err = tool(operation).execute(args).expect_err("should fail");
                assert!(
                    err.message.contains(fragment),
                    "{operation:?} {args}: {}",
                    err.message
                );
            }
        }
    }

    #[test]
    fn input_size_is_capped() {
        let limits = BuiltinLimits {
            max_input_bytes: 8,
            ..BuiltinLimits::default()
        };
        for operation in StringOperation::ALL {
            let tool = StringTool::new(operation, limits);
            assert!(tool.execute(&json!({"text": "12345678"})).is_ok());
            // Eight characters but sixteen bytes.
            let err = tool
                .execute(&json!({"text": "éééééééé"}))
                .expect_err("over the byte limit");
            assert!(err.message.contains("too large"), "{}", err.message);
        }
    }

    #[test]
    fn names_and_operations_agree() {
        let names: Vec<&str> = StringOperation::ALL
            .iter()
            .map(|operation| tool(*operation).name())
            .collect();
        assert_eq!(
            names,
            [
                "string_uppercase",
                "string_lowercase",
                "string_reverse",
                "string_length",
                "string_word_count"
            ]
        );
        assert_eq!(
            tool(StringOperation::Reverse).operation(),
            StringOperation::Reverse
        );
    }
}
