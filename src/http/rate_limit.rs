//! Request budgets (`RATE_LIMIT_PER_MINUTE`): each client may make that many requests per
//! minute, refilled evenly. A client is its API key when it presents one the service knows
//! (so agents behind one NAT do not share a budget), otherwise its address: the peer's, or
//! the forwarded one when `TRUST_PROXY=true`. Unknown credentials count as the address,
//! so inventing keys does not buy new budgets.

use std::{
    hash::{BuildHasher, RandomState},
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::Duration,
};

use axum::{Router, http::Request, response::IntoResponse};
use tower_governor::{
    GovernorError, GovernorLayer,
    governor::{GovernorConfig, GovernorConfigBuilder},
    key_extractor::{KeyExtractor, PeerIpKeyExtractor, SmartIpKeyExtractor},
};

use super::auth::{Guard, presented_credential};
use crate::error::ApiError;

/// How often idle clients' state is dropped.
const FORGET_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ClientKey {
    guards: Arc<Vec<Guard>>,
    trust_proxy: bool,
    hasher: RandomState,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Client {
    /// A known API key, hashed so the limiter never holds the key itself.
    Key(u64),
    Address(IpAddr),
}

impl KeyExtractor for ClientKey {
    type Key = Client;

    fn extract<T>(&self, request: &Request<T>) -> Result<Client, GovernorError> {
        if let Some(credential) = presented_credential(request.headers())
            && self.guards.iter().any(|g| g.is_known_key(credential))
        {
            return Ok(Client::Key(self.hasher.hash_one(credential)));
        }
        let address = if self.trust_proxy {
            SmartIpKeyExtractor.extract(request)
        } else {
            PeerIpKeyExtractor.extract(request)
        };
        // Without a peer address (not served over TCP) every request shares one budget.
        Ok(Client::Address(
            address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

/// `routes` with a budget of `per_minute` requests per client; unchanged when it is unset or 0.
pub fn limit<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    per_minute: Option<u32>,
    trust_proxy: bool,
    guards: Vec<Guard>,
) -> Router<S> {
    let Some(per_minute) = per_minute.filter(|n| *n > 0) else {
        return routes;
    };
    let key = ClientKey {
        guards: Arc::new(guards),
        trust_proxy,
        hasher: RandomState::new(),
    };
    let config: GovernorConfig<ClientKey, _> = GovernorConfigBuilder::default()
        .key_extractor(key)
        .per_nanosecond(60_000_000_000 / u64::from(per_minute))
        .burst_size(per_minute)
        .finish()
        .expect("a positive period and burst make a valid limiter");
    let config = Arc::new(config);
    let limiter = Arc::downgrade(config.limiter());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FORGET_INTERVAL);
        loop {
            tick.tick().await;
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            limiter.retain_recent();
        }
    });
    routes.layer(GovernorLayer::new(config).error_handler(|err| {
        metrics::counter!("rate_limited_requests_total").increment(1);
        match err {
            GovernorError::TooManyRequests { wait_time, .. } => ApiError::TooManyRequests {
                retry_after_secs: wait_time,
            }
            .into_response(),
            other => ApiError::Internal(other.to_string()).into_response(),
        }
    }))
}
