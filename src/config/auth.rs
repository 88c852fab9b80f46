//! `ADMIN_*`, `MCP_API_KEYS` and `JWT_*`: who may call which routes.

use serde::Deserialize;

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminAuth {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Comma-separated keys the `/admin` routes require.
    pub admin_api_keys: Option<Secret>,
    /// `disabled` lets the server listen beyond loopback with open `/admin` routes.
    pub admin_auth: AdminAuth,
    /// Comma-separated keys the `/mcp` routes require (admin keys are accepted there too).
    pub mcp_api_keys: Option<Secret>,
    /// HS256 secret of signed tokens (JWT) accepted beside the API keys.
    pub jwt_secret: Option<Secret>,
    /// RSA or EC public key (PEM text or a file path) of RS256/ES256 tokens.
    pub jwt_public_key: Option<Secret>,
    /// Required `aud` of tokens, when set.
    pub jwt_audience: Option<String>,
    /// Required `iss` of tokens, when set.
    pub jwt_issuer: Option<String>,
}

/// Shortest HS256 secret accepted: the key must be as long as the hash (RFC 7518, 3.2);
/// a short or empty one lets anyone forge admin tokens.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The JWT scope of the operator routes (`/admin`); it also grants the agents' routes.
pub const ADMIN_SCOPE: &str = "admin";
/// The JWT scope of the agents' routes (`/mcp`, `/mcp/*`).
pub const TOOLS_SCOPE: &str = "tools:call";

/// Refuses an empty or short `JWT_SECRET`, with the reason.
pub fn check_jwt_secret(secret: &Secret) -> Result<(), String> {
    let length = secret.expose().len();
    if length < MIN_JWT_SECRET_BYTES {
        return Err(format!(
            "JWT_SECRET is {} ({length} bytes): it must be at least {MIN_JWT_SECRET_BYTES} \
             random bytes, or unset to accept no signed tokens",
            if length == 0 { "empty" } else { "too short" }
        ));
    }
    Ok(())
}
