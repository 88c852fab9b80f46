//! Redaction, restoring and scrubbing of secrets.

use std::collections::BTreeMap;

use super::*;

fn http(url: &str, headers: &[(&str, &str)]) -> Implementation {
    Implementation::Http {
        url: url.into(),
        method: "POST".into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        timeout_ms: None,
    }
}

const STORED: &str = "https://al%40ice:pa55w0rd@api.example:8443/v1?units=metric&api_key=k3y%2Bz";

#[test]
fn reads_redact_credentials_and_secret_headers_only() {
    let redacted = http(
        STORED,
        &[("Authorization", "Bearer s3cret"), ("Accept", "text/plain")],
    )
    .redacted();
    let Implementation::Http { url, headers, .. } = &redacted else {
        unreachable!()
    };
    assert_eq!(
        url,
        "https://REDACTED:REDACTED@api.example:8443/v1?units=metric&api_key=REDACTED"
    );
    assert_eq!(headers["Authorization"], REDACTED);
    assert_eq!(headers["Accept"], "text/plain");
    assert_eq!(
        redact_url("https://api.example/v1?q=1"),
        "https://api.example/v1?q=1"
    );
    assert_eq!(redact_url("not a url"), REDACTED);
}

#[test]
fn sending_the_placeholder_back_keeps_the_secret() {
    let stored = http(STORED, &[("Authorization", "Bearer s3cret")]);
    let round_trip = restore(stored.redacted(), &stored).unwrap();
    let Implementation::Http { url, headers, .. } = &round_trip else {
        unreachable!()
    };
    let (url, stored_url) = (Url::parse(url).unwrap(), Url::parse(STORED).unwrap());
    assert_eq!(url.username(), stored_url.username());
    assert_eq!(url.password(), stored_url.password());
    assert_eq!(
        url.query_pairs().collect::<Vec<_>>(),
        stored_url.query_pairs().collect::<Vec<_>>()
    );
    assert_eq!(headers["Authorization"], "Bearer s3cret");

    // A new header value replaces; an unknown placeholder and a new host are refused.
    let changed = restore(http(STORED, &[("Authorization", "Bearer n3w")]), &stored).unwrap();
    assert_eq!(changed, http(STORED, &[("Authorization", "Bearer n3w")]));
    let unknown = restore(http(STORED, &[("X-Api-Key", REDACTED)]), &stored).unwrap_err();
    assert!(unknown.invalid_field() == Some("implementation.headers.X-Api-Key"));
    let moved = restore(
        http(
            "https://REDACTED:REDACTED@evil.example:8443/v1",
            &[("Authorization", REDACTED)],
        ),
        &stored,
    )
    .unwrap_err();
    assert!(moved.invalid_field() == Some("implementation.url"));
    assert!(refuse_placeholder(&stored.redacted()).is_err());
    assert!(refuse_placeholder(&stored).is_ok());
}

#[test]
fn messages_lose_every_secret() {
    let stored = http(STORED, &[("Authorization", "Bearer s3cret")]);
    let message = format!(
        "error sending request for url ({}&x=1): user al@ice, key k3y+z, k3y%2Bz, \
         header Bearer s3cret, pa55w0rd",
        Url::parse(STORED).unwrap()
    );
    let scrubbed = scrub(&message, &stored);
    for secret in ["al@ice", "al%40ice", "pa55w0rd", "k3y", "s3cret"] {
        assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
    }
    assert!(scrubbed.contains("api.example:8443"), "{scrubbed}");
}

#[test]
fn short_settings_in_headers_stay_in_messages() {
    let stored = http(
        "https://api.example/v1",
        &[
            ("X-Api-Version", "2"),
            ("X-Tenant", "acme-corp-7"),
            ("X-Auth", "k9"),
        ],
    );
    let scrubbed = scrub(
        "HTTP 429: retry in 2 seconds (tenant acme-corp-7, auth k9)",
        &stored,
    );
    assert_eq!(
        scrubbed,
        "HTTP 429: retry in 2 seconds (tenant REDACTED, auth REDACTED)"
    );
}

#[test]
fn an_upstream_is_the_same_whatever_credentials_reach_it() {
    let identity = |url: &str| upstream_identity(url).unwrap();
    let base = identity("https://mcp.example:8443/v1/mcp?region=eu");
    for rotated in [
        "https://al:ice@mcp.example:8443/v1/mcp?region=eu",
        "https://bob:n3w@mcp.example:8443/v1/mcp?region=eu&api_key=k2",
        "https://mcp.example:8443/v1/mcp?token=t1&region=eu#x",
    ] {
        assert_eq!(identity(rotated), base, "{rotated}");
    }
    assert!(!base.contains("al") && !base.contains("k2"), "{base}");
    for other in [
        "https://mcp.example:8444/v1/mcp?region=eu",
        "http://mcp.example:8443/v1/mcp?region=eu",
        "https://mcp.example:8443/v2/mcp?region=eu",
        "https://mcp.example:8443/v1/mcp?region=us",
        "https://other.example:8443/v1/mcp?region=eu",
    ] {
        assert_ne!(identity(other), base, "{other}");
    }
    assert_eq!(upstream_identity("not a url"), None);
}
