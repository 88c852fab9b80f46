//! Who may call what. Credentials come as `Authorization: Bearer <credential>` or
//! `X-API-Key: <key>`; a credential is an API key (compared in constant time) or, when JWT is
//! configured, a signed token whose `scope` claim grants `admin` or `tools:call`.
//!
//! Two areas: `/admin` needs an admin key or the `admin` scope; `/mcp` needs an MCP key, an
//! admin key, or either scope, but only when MCP keys or JWT are configured. An area with no
//! credentials configured is open (`App::build` refuses that beyond loopback for `/admin`).

use std::{path::Path, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::{Secret, Settings};

pub use crate::config::{ADMIN_SCOPE, TOOLS_SCOPE};

#[derive(Clone, Default)]
pub struct ApiKeys(Arc<Vec<Secret>>);

impl ApiKeys {
    /// Keys from a comma-separated list; blanks are ignored.
    pub fn parse(list: Option<&Secret>) -> Self {
        let keys = list
            .map(|list| {
                list.expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default();
        Self(Arc::new(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn accepts(&self, presented: &str) -> bool {
        // Every key is compared, so the time taken does not tell which one matched.
        self.0.iter().fold(false, |found, key| {
            found | bool::from(key.expose().as_bytes().ct_eq(presented.as_bytes()))
        })
    }
}

/// Checks signed tokens: signature, `exp`, `nbf`, and `aud`/`iss` when configured.
#[derive(Clone)]
pub struct JwtVerifier {
    key: Arc<DecodingKey>,
    validation: Arc<Validation>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    scope: Option<Scopes>,
}

/// OAuth writes scopes as one space-separated string; some issuers use an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Spaced(String),
    List(Vec<String>),
}

impl Scopes {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::Spaced(list) => list.split_whitespace().any(|s| s == wanted),
            Self::List(list) => list.iter().any(|s| s == wanted),
        }
    }
}

impl JwtVerifier {
    /// The verifier the settings describe, if any: `JWT_SECRET` (HS256) or
    /// `JWT_PUBLIC_KEY` (an RSA or EC public key in PEM, inline or as a file path).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Self>> {
        let (key, algorithms) = match (&settings.auth.jwt_secret, &settings.auth.jwt_public_key) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set either JWT_SECRET or JWT_PUBLIC_KEY, not both")
            }
            (Some(secret), None) => {
                crate::config::check_jwt_secret(secret).map_err(anyhow::Error::msg)?;
                (
                    DecodingKey::from_secret(secret.expose().as_bytes()),
                    vec![Algorithm::HS256],
                )
            }
            (None, Some(public_key)) => public_key_from(public_key.expose())?,
            (None, None) => return Ok(None),
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.validate_nbf = true;
        validation.leeway = 30;
        validation.validate_aud = settings.auth.jwt_audience.is_some();
        if let Some(audience) = &settings.auth.jwt_audience {
            validation.set_audience(&[audience]);
        }
        if let Some(issuer) = &settings.auth.jwt_issuer {
            validation.set_issuer(&[issuer]);
        }
        // A configured audience or issuer must be present, not only right when present.
        let mut required = vec!["exp"];
        if settings.auth.jwt_audience.is_some() {
            required.push("aud");
        }
        if settings.auth.jwt_issuer.is_some() {
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Ok(Some(Self {
            key: Arc::new(key),
            validation: Arc::new(validation),
        }))
    }

    fn scopes(&self, token: &str) -> Result<Option<Scopes>, String> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims.scope)
            .map_err(|err| err.to_string())
    }
}

fn public_key_from(value: &str) -> anyhow::Result<(DecodingKey, Vec<Algorithm>)> {
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        value.to_owned()
    } else {
        std::fs::read_to_string(Path::new(value))
            .map_err(|err| anyhow::anyhow!("cannot read JWT_PUBLIC_KEY file {value}: {err}"))?
    };
    if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok((key, vec![Algorithm::RS256]));
    }
    DecodingKey::from_ec_pem(pem.as_bytes())
        .map(|key| (key, vec![Algorithm::ES256]))
        .map_err(|err| anyhow::anyhow!("JWT_PUBLIC_KEY is neither an RSA nor an EC key: {err}"))
}

/// The credentials one area of routes accepts.
#[derive(Clone)]
pub struct Guard {
    keys: ApiKeys,
    jwt: Option<JwtVerifier>,
    scopes: &'static [&'static str],
    /// Open when nothing is configured for this area.
    open: bool,
}

impl Guard {
    /// `/admin`: admin keys or the admin scope.
    pub fn admin(admin_keys: &ApiKeys, jwt: Option<&JwtVerifier>) -> Self {
        Self {
            keys: admin_keys.clone(),
            jwt: jwt.cloned(),
            scopes: &[ADMIN_SCOPE],
            open: admin_keys.is_empty() && jwt.is_none(),
        }
    }

    /// `/mcp`: MCP keys, admin keys, or either scope; open unless MCP keys or JWT are set.
    pub fn tools(mcp_keys: &ApiKeys, admin_keys: &ApiKeys, jwt: Option<&JwtVerifier>) -> Self {
        let keys: Vec<Secret> = mcp_keys
            .0
            .iter()
            .chain(admin_keys.0.iter())
            .cloned()
            .collect();
        Self {
            keys: ApiKeys(Arc::new(keys)),
            jwt: jwt.cloned(),
            scopes: &[TOOLS_SCOPE, ADMIN_SCOPE],
            open: mcp_keys.is_empty() && jwt.is_none(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether `credential` is one of this area's API keys (for per-key rate limits).
    pub fn is_known_key(&self, credential: &str) -> bool {
        self.keys.accepts(credential)
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.open {
            return Ok(());
        }
        let Some(credential) = presented_credential(headers) else {
            return Err(ApiError::Unauthorized(
                "this route needs credentials: Authorization: Bearer <key or token> or \
                 X-API-Key: <key>"
                    .into(),
            ));
        };
        if self.keys.accepts(credential) {
            return Ok(());
        }
        let Some(jwt) = &self.jwt else {
            return Err(ApiError::Unauthorized("the API key is not valid".into()));
        };
        // A wrong static key beside JWT is a key problem, not a token's "InvalidToken".
        if credential.split('.').count() != 3 {
            let what = if self.keys.is_empty() {
                "the credential is not a token (a JWT)"
            } else {
                "the API key is not valid (nor is it a token)"
            };
            return Err(ApiError::Unauthorized(what.into()));
        }
        let scopes = jwt.scopes(credential).map_err(|reason| {
            ApiError::Unauthorized(format!("the token is not valid: {reason}"))
        })?;
        if scopes.is_some_and(|granted| self.scopes.iter().any(|s| granted.contains(s))) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the token's scope does not include {}",
                self.scopes.join(" or ")
            )))
        }
    }
}

/// The credential a request carries, if any.
pub fn presented_credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Middleware: 401 without valid credentials, 403 when a token lacks the area's scope.
pub async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_are_parsed_and_matched_exactly() {
        let keys = ApiKeys::parse(Some(&Secret::new(" one, two ,,")));
        assert!(keys.accepts("one") && keys.accepts("two"));
        assert!(!keys.accepts("on") && !keys.accepts("one ") && !keys.accepts(""));
        assert!(ApiKeys::parse(None).is_empty());
        assert!(ApiKeys::parse(Some(&Secret::new(" , "))).is_empty());
    }

    fn hs256_settings() -> Settings {
        let mut settings = Settings::for_tests("unused");
        settings.auth.jwt_secret = Some(Secret::new("test-secret-of-enough-length-0123456789"));
        settings.auth.jwt_audience = Some("tool-registry".into());
        settings.auth.jwt_issuer = Some("https://issuer.example".into());
        settings
    }

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"test-secret-of-enough-length-0123456789"),
        )
        .unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn tokens_are_checked_for_signature_time_audience_issuer_and_scope() {
        let jwt = JwtVerifier::from_settings(&hs256_settings())
            .unwrap()
            .unwrap();
        let admin = Guard::admin(&ApiKeys::default(), Some(&jwt));
        let tools = Guard::tools(&ApiKeys::default(), &ApiKeys::default(), Some(&jwt));
        let good = |scope: serde_json::Value| {
            token(json!({"exp": now() + 600, "aud": "tool-registry",
                         "iss": "https://issuer.example", "scope": scope}))
        };

        assert!(admin.check(&bearer(&good(json!("read admin")))).is_ok());
        assert!(tools.check(&bearer(&good(json!(["tools:call"])))).is_ok());
        assert!(tools.check(&bearer(&good(json!("admin")))).is_ok());
        let forbidden = admin
            .check(&bearer(&good(json!("tools:call"))))
            .unwrap_err();
        assert_eq!(forbidden.status(), 403);

        let expired = token(json!({"exp": now() - 3600, "aud": "tool-registry",
                                   "iss": "https://issuer.example", "scope": "admin"}));
        let not_yet = token(json!({"exp": now() + 7200, "nbf": now() + 3600,
                                   "aud": "tool-registry", "iss": "https://issuer.example",
                                   "scope": "admin"}));
        let wrong_audience = token(json!({"exp": now() + 600, "aud": "elsewhere",
                                          "iss": "https://issuer.example", "scope": "admin"}));
        let wrong_issuer = token(json!({"exp": now() + 600, "aud": "tool-registry",
                                        "iss": "https://evil.example", "scope": "admin"}));
        let no_expiry = token(
            json!({"aud": "tool-registry", "iss": "https://issuer.example",
                                     "scope": "admin"}),
        );
        let no_audience = token(json!({"exp": now() + 600, "iss": "https://issuer.example",
                                       "scope": "admin"}));
        let no_issuer = token(json!({"exp": now() + 600, "aud": "tool-registry",
                                     "scope": "admin"}));
        let tampered = format!("{}x", good(json!("admin")));
        for bad in [
            expired,
            not_yet,
            wrong_audience,
            wrong_issuer,
            no_audience,
            no_issuer,
            no_expiry,
            tampered,
        ] {
            let err = admin.check(&bearer(&bad)).unwrap_err();
            assert_eq!(err.status(), 401, "{bad}");
        }
        assert_eq!(admin.check(&HeaderMap::new()).unwrap_err().status(), 401);
    }

    #[test]
    fn empty_or_short_secrets_are_refused_and_unset_claims_are_not_required() {
        for short in ["", "short", "0123456789012345678901234567890"] {
            let mut settings = Settings::for_tests("unused");
            settings.auth.jwt_secret = Some(Secret::new(short));
            let err = JwtVerifier::from_settings(&settings)
                .err()
                .expect("refused");
            assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        }
        let mut settings = hs256_settings();
        settings.auth.jwt_audience = None;
        settings.auth.jwt_issuer = None;
        let jwt = JwtVerifier::from_settings(&settings).unwrap().unwrap();
        let admin = Guard::admin(&ApiKeys::default(), Some(&jwt));
        let bare = token(json!({"exp": now() + 600, "scope": "admin"}));
        assert!(admin.check(&bearer(&bare)).is_ok());
    }

    #[test]
    fn areas_open_only_when_nothing_is_configured() {
        let none = ApiKeys::default();
        let admin_keys = ApiKeys::parse(Some(&Secret::new("adm")));
        let mcp_keys = ApiKeys::parse(Some(&Secret::new("agent")));
        assert!(Guard::admin(&none, None).is_open());
        assert!(Guard::tools(&none, &admin_keys, None).is_open());
        let tools = Guard::tools(&mcp_keys, &admin_keys, None);
        let with_key = |key: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-api-key", key.parse().unwrap());
            headers
        };
        assert!(tools.check(&with_key("agent")).is_ok());
        assert!(tools.check(&with_key("adm")).is_ok());
        assert!(tools.check(&with_key("nope")).is_err());
        let admin = Guard::admin(&admin_keys, None);
        assert!(admin.check(&with_key("agent")).is_err());
    }

    #[test]
    fn a_wrong_key_beside_tokens_is_called_a_key() {
        let jwt = JwtVerifier::from_settings(&hs256_settings())
            .unwrap()
            .unwrap();
        let mcp_keys = ApiKeys::parse(Some(&Secret::new("agent")));
        let message = |guard: &Guard, credential: &str| {
            guard.check(&bearer(credential)).unwrap_err().to_string()
        };
        let keyed = Guard::tools(&mcp_keys, &ApiKeys::default(), Some(&jwt));
        assert!(message(&keyed, "not-the-key").contains("the API key is not valid"));
        assert!(message(&keyed, "a.b.c").contains("the token is not valid"));
        let tokens_only = Guard::tools(&ApiKeys::default(), &ApiKeys::default(), Some(&jwt));
        assert!(message(&tokens_only, "not-the-key").contains("not a token"));
    }
}
