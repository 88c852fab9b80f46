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

use std::num::NonZeroU32;

use axum::{
    body::Body,
    extract::State,
    http::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    state::keyed::DefaultKeyedStateStore,
};
use tower_governor::{
    GovernorError,
    key_extractor::{KeyExtractor, PeerIpKeyExtractor, SmartIpKeyExtractor},
};

use super::auth::{Guard, presented_credential};
use super::error::ApiError;

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

/// The shared budget of every client: one limiter for all routes but the probes and the
/// scrape, so requests to unknown paths or with invented methods spend it too.
#[derive(Clone)]
pub struct RateLimit {
    key: ClientKey,
    limiter: Arc<KeyedLimiter>,
}

type KeyedLimiter = RateLimiter<Client, DefaultKeyedStateStore<Client>, DefaultClock>;

impl RateLimit {
    /// A budget of `per_minute` requests per client; `None` when it is unset or 0.
    pub fn new(per_minute: Option<u32>, trust_proxy: bool, guards: Vec<Guard>) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute?)?;
        let period = Duration::from_nanos(60_000_000_000 / u64::from(per_minute.get()));
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(per_minute);
        let limiter = Arc::new(RateLimiter::keyed(quota));
        let forget = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FORGET_INTERVAL);
            loop {
                tick.tick().await;
                let Some(limiter) = forget.upgrade() else {
                    return;
                };
                limiter.retain_recent();
            }
        });
        Some(Self {
            key: ClientKey {
                guards: Arc::new(guards),
                trust_proxy,
                hasher: RandomState::new(),
            },
            limiter,
        })
    }

    fn check<B>(&self, request: &Request<B>) -> Result<(), ApiError> {
        let path = request.uri().path();
        // Probes and scrapes are never limited: a throttled probe restarts healthy pods.
        if path == "/health" || path.starts_with("/health/") || path == "/metrics" {
            return Ok(());
        }
        let client = self
            .key
            .extract(request)
            .map_err(|err| ApiError::Internal(err.to_string()))?;
        self.limiter.check_key(&client).map_err(|not_until| {
            metrics::counter!("rate_limited_requests_total").increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::TooManyRequests {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            }
        })
    }
}

/// Middleware: 429 with `Retry-After` once the client's budget is spent.
pub async fn limit(State(limit): State<RateLimit>, request: Request<Body>, next: Next) -> Response {
    match limit.check(&request) {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}
