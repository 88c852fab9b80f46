//! Query-string parameters read one by one, so each bad value is a 422 naming itself.

use std::collections::HashMap;

use super::error::ApiError;

pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// Parses the raw query; a parameter not in `known` is refused (typos must not pass).
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Self, ApiError> {
        let params: HashMap<String, String> =
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ApiError::validation(
                unknown.clone(),
                format!(
                    "unknown query parameter '{unknown}'; expected one of {}",
                    known.join(", ")
                ),
            ));
        }
        if let Some((name, _)) = params.iter().find(|(_, value)| value.contains('\0')) {
            return Err(ApiError::validation(
                name.clone(),
                "text must not contain the NUL character (U+0000)",
            ));
        }
        Ok(Self(params))
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    pub fn number(&self, name: &str) -> Result<Option<u32>, ApiError> {
        self.0
            .get(name)
            .map(|raw| {
                raw.parse::<u32>().map_err(|_| {
                    ApiError::validation(name, format!("{name} must be a non-negative integer"))
                })
            })
            .transpose()
    }

    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.0.get(name).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::validation(
                name,
                format!("{name} must be true or false"),
            )),
        }
    }

    /// A comma-separated list, blanks dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .get(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}
