//! Secrets in tool implementations are write-only, as gateways treat them.
//!
//! - Operators read header values (all but a few harmless headers), the user and password
//!   of URLs and the values of query parameters whose names look secret (`api_key`,
//!   `token`, `sig` …) as [`REDACTED`].
//! - An update that sends the placeholder back keeps the stored secret, as long as the URL's
//!   origin (scheme, host, port) stays the same, so a secret is never sent to a new host
//!   without the operator writing it again.
//! - Messages about a call (errors to agents, execution records, logs) have every secret of
//!   the tool's implementation cut out ([`scrub`]).
//!
//! Agents never see implementations at all (see `served`).

use serde_json::Value;
use url::{Url, form_urlencoded};

use super::{Implementation, RegistryError, StdioServer, Tool, ToolVersion};

/// What a read shows in place of a secret, and what an update may send to keep it.
pub const REDACTED: &str = "REDACTED";

/// Headers whose values are shown; every other header's value is a secret.
const SHOWN_HEADERS: [&str; 8] = [
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "content-language",
    "content-type",
    "pragma",
    "user-agent",
];

/// Query parameters whose name holds one of these are secrets.
const SECRET_WORDS: [&str; 13] = [
    "key",
    "token",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
    "cookie",
    "jwt",
    "bearer",
    "private",
];

pub fn header_is_shown(name: &str) -> bool {
    SHOWN_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

pub fn query_name_is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// The URL with its user, password and secret query values replaced by [`REDACTED`]; the
/// text unchanged when it holds none; `REDACTED` whole when it does not parse.
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = Url::parse(text) else {
        return REDACTED.to_owned();
    };
    let mut changed = false;
    if !url.username().is_empty() {
        changed |= url.set_username(REDACTED).is_ok();
    }
    if url.password().is_some() {
        changed |= url.set_password(Some(REDACTED)).is_ok();
    }
    if url
        .query_pairs()
        .any(|(name, _)| query_name_is_secret(&name))
    {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if query_name_is_secret(&name) {
                    REDACTED.to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed { url.into() } else { text.to_owned() }
}

/// What names an upstream whatever credentials reach it: the URL without its user,
/// password, secret query parameters (see [`query_name_is_secret`]) and fragment, so a
/// rotated key or password leaves it the same. `None` when the text is no URL.
pub fn upstream_identity(text: &str) -> Option<String> {
    let mut url = Url::parse(text).ok()?;
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !query_name_is_secret(name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Some(url.into())
}

/// `metadata` as it is shown, when its `imported_from` address holds credentials: imports
/// once stored the upstream URL as given, and metadata is part of the agent view. `None`
/// when there is nothing to hide.
pub fn redacted_metadata(metadata: &Value) -> Option<Value> {
    let from = metadata.get("imported_from")?.as_str()?;
    let shown = redact_url(from);
    if shown == from {
        return None;
    }
    let mut metadata = metadata.clone();
    metadata["imported_from"] = Value::String(shown);
    Some(metadata)
}

/// `new` metadata, or the stored one when `new` is the stored one as it was shown.
pub fn restore_metadata(new: &mut Value, stored: &Value) {
    if redacted_metadata(stored).as_ref() == Some(new) {
        new.clone_from(stored);
    }
}

impl Implementation {
    /// The implementation as operators read it: secrets replaced by [`REDACTED`].
    pub fn redacted(&self) -> Implementation {
        match self {
            Implementation::Builtin { .. } => self.clone(),
            Implementation::Http {
                url,
                method,
                headers,
                timeout_ms,
            } => Implementation::Http {
                url: redact_url(url),
                method: method.clone(),
                headers: headers
                    .iter()
                    .map(|(name, value)| {
                        let shown = if header_is_shown(name) {
                            value.clone()
                        } else {
                            REDACTED.to_owned()
                        };
                        (name.clone(), shown)
                    })
                    .collect(),
                timeout_ms: *timeout_ms,
            },
            Implementation::Mcp {
                url,
                tool,
                timeout_ms,
                stdio,
            } => Implementation::Mcp {
                url: if url.is_empty() {
                    String::new()
                } else {
                    redact_url(url)
                },
                tool: tool.clone(),
                timeout_ms: *timeout_ms,
                stdio: stdio.as_ref().map(|server| server.redacted()),
            },
        }
    }

    fn url(&self) -> Option<&str> {
        match self {
            Implementation::Builtin { .. } => None,
            Implementation::Http { url, .. } | Implementation::Mcp { url, .. } => {
                Some(url.as_str()).filter(|url| !url.is_empty())
            }
        }
    }

    fn stdio(&self) -> Option<&StdioServer> {
        match self {
            Implementation::Mcp { stdio, .. } => stdio.as_ref(),
            _ => None,
        }
    }
}

impl Tool {
    /// The tool as operators read it: its implementation's secrets redacted.
    pub fn redacted(mut self) -> Tool {
        self.implementation = self.implementation.redacted();
        if let Some(metadata) = redacted_metadata(&self.metadata) {
            self.metadata = metadata;
        }
        self
    }
}

impl ToolVersion {
    /// An earlier definition as operators read it: its implementation's secrets redacted.
    pub fn redacted(mut self) -> ToolVersion {
        let definition = &mut self.definition;
        definition.implementation = definition.implementation.redacted();
        if let Some(metadata) = redacted_metadata(&definition.metadata) {
            definition.metadata = metadata;
        }
        self
    }
}

/// Whether a definition holds the placeholder anywhere a secret may be.
pub fn has_placeholder(implementation: &Implementation) -> bool {
    let in_headers = matches!(implementation, Implementation::Http { headers, .. }
        if headers.values().any(|v| v == REDACTED));
    let in_url = implementation
        .url()
        .and_then(|url| Url::parse(url).ok())
        .is_some_and(|url| {
            url.username() == REDACTED
                || url.password() == Some(REDACTED)
                || url.query_pairs().any(|(_, value)| value == REDACTED)
        });
    let in_env = implementation
        .stdio()
        .is_some_and(StdioServer::has_placeholder);
    in_headers || in_url || in_env
}

/// Refuses the placeholder in a new tool: there is no stored secret for it to stand for.
pub fn refuse_placeholder(implementation: &Implementation) -> Result<(), RegistryError> {
    if has_placeholder(implementation) {
        return Err(RegistryError::invalid(
            "implementation",
            format!(
                "'{REDACTED}' keeps a stored secret on update; a new tool needs the secret itself"
            ),
        ));
    }
    Ok(())
}

/// `new` with each [`REDACTED`] placeholder replaced by the secret `stored` holds in the
/// same place. Placeholders are honoured only while the URL's origin is unchanged; one with
/// no stored secret to stand for is refused (422), never stored as a literal.
pub fn restore(
    mut new: Implementation,
    stored: &Implementation,
) -> Result<Implementation, RegistryError> {
    // The redacted view sent back unchanged is the stored implementation, even where
    // redaction re-encoded the URL's query (`%20` read back as `+`).
    if new == stored.redacted() {
        return Ok(stored.clone());
    }
    if !has_placeholder(&new) {
        return Ok(new);
    }
    if let Implementation::Mcp {
        stdio: Some(server),
        ..
    } = &mut new
    {
        server.restore(stored.stdio(), "implementation.stdio")?;
        return Ok(new);
    }
    let stored_url = stored.url().and_then(|url| Url::parse(url).ok());
    let new_url = new.url().and_then(|url| Url::parse(url).ok());
    let (Some(stored_url), Some(mut new_url)) = (stored_url, new_url) else {
        return Err(missing("implementation"));
    };
    if stored_url.origin() != new_url.origin() {
        return Err(RegistryError::invalid(
            "implementation.url",
            format!(
                "'{REDACTED}' keeps a stored secret only while the URL's scheme, host and port \
                 stay the same; send the secrets themselves with a new address"
            ),
        ));
    }
    restore_url(&mut new_url, &stored_url)?;
    match &mut new {
        Implementation::Http { url, headers, .. } => {
            *url = new_url.into();
            let Implementation::Http {
                headers: stored_headers,
                ..
            } = stored
            else {
                if headers.values().any(|v| v == REDACTED) {
                    return Err(missing("implementation.headers"));
                }
                return Ok(new);
            };
            for (name, value) in headers.iter_mut().filter(|(_, v)| *v == REDACTED) {
                let kept = stored_headers
                    .iter()
                    .find(|(stored_name, _)| stored_name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| missing(&format!("implementation.headers.{name}")))?;
                value.clone_from(kept.1);
            }
        }
        Implementation::Mcp { url, .. } => *url = new_url.into(),
        Implementation::Builtin { .. } => {}
    }
    Ok(new)
}

fn restore_url(new: &mut Url, stored: &Url) -> Result<(), RegistryError> {
    if new.username() == REDACTED {
        if stored.username().is_empty() {
            return Err(missing("implementation.url"));
        }
        let _ = new.set_username(stored.username());
    }
    if new.password() == Some(REDACTED) {
        let Some(password) = stored.password() else {
            return Err(missing("implementation.url"));
        };
        let password = password.to_owned();
        let _ = new.set_password(Some(&password));
    }
    if new.query_pairs().any(|(_, value)| value == REDACTED) {
        let stored_pairs: Vec<(String, String)> = stored.query_pairs().into_owned().collect();
        let mut pairs: Vec<(String, String)> = new.query_pairs().into_owned().collect();
        for at in 0..pairs.len() {
            if pairs[at].1 != REDACTED {
                continue;
            }
            // The n-th parameter of a name takes the stored n-th one of that name.
            let name = pairs[at].0.clone();
            let nth = pairs[..at].iter().filter(|(n, _)| *n == name).count();
            let kept = stored_pairs
                .iter()
                .filter(|(n, _)| *n == name)
                .nth(nth)
                .ok_or_else(|| missing("implementation.url"))?;
            pairs[at].1.clone_from(&kept.1);
        }
        new.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Ok(())
}

fn missing(field: &str) -> RegistryError {
    RegistryError::invalid(
        field,
        format!("'{REDACTED}' stands for a stored secret, and the tool has none in that place"),
    )
}

/// The shortest value of a header whose name does not look secret that messages lose:
/// shorter ones (`X-Api-Version: 2`) are settings, and cutting them out would cut every
/// `2` out of a message.
const MIN_SCRUBBED_HEADER_LEN: usize = 6;

/// The secrets of an implementation as they may appear in a message: as written and
/// percent-decoded, longest first.
fn secret_texts(implementation: &Implementation) -> Vec<String> {
    let mut found = Vec::new();
    if let Implementation::Http { headers, .. } = implementation {
        found.extend(
            headers
                .iter()
                .filter(|(name, value)| {
                    !header_is_shown(name)
                        && (query_name_is_secret(name) || value.len() >= MIN_SCRUBBED_HEADER_LEN)
                })
                .map(|(_, value)| value.clone()),
        );
    }
    if let Some(url) = implementation.url().and_then(|url| Url::parse(url).ok()) {
        for raw in [url.username(), url.password().unwrap_or_default()] {
            found.push(raw.to_owned());
            found.push(percent_decoded(raw));
        }
        for pair in url.query().unwrap_or_default().split('&') {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name: String = form_urlencoded::parse(raw_name.as_bytes())
                .map(|(name, _)| name.into_owned())
                .next()
                .unwrap_or_default();
            if query_name_is_secret(&name) {
                found.push(raw_value.to_owned());
                found.extend(
                    form_urlencoded::parse(format!("v={raw_value}").as_bytes())
                        .map(|(_, value)| value.into_owned()),
                );
            }
        }
    }
    if let Some(server) = implementation.stdio() {
        found.extend(server.secret_texts().map(str::to_owned));
    }
    found.retain(|secret| !secret.is_empty() && secret != REDACTED);
    found.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    found.dedup();
    found
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[at] == b'%'
            && at + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[at + 1]), hex(bytes[at + 2]))
        {
            out.push((high * 16 + low) as u8);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `message` with every secret of `implementation` replaced by [`REDACTED`]: what a call's
/// error may say to an agent, to the execution record and to the log.
pub fn scrub(message: &str, implementation: &Implementation) -> String {
    let mut scrubbed = message.to_owned();
    if let Some(url) = implementation.url() {
        scrubbed = scrubbed.replace(url, &redact_url(url));
    }
    for secret in secret_texts(implementation) {
        scrubbed = scrubbed.replace(&secret, REDACTED);
    }
    scrubbed
}

/// [`scrub`] for a message about an upstream MCP server at `url`.
pub fn scrub_url(message: &str, url: &str) -> String {
    let implementation = Implementation::Mcp {
        url: url.to_owned(),
        tool: String::new(),
        timeout_ms: None,
        stdio: None,
    };
    scrub(message, &implementation)
}

#[cfg(test)]
mod tests;
