//! Tests of the Redis cache against a real `redis-server`.

use std::{
    net::{SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    sync::Arc,
};

use super::*;
use crate::embedding::http::test_server::{FakeEmbedServer, fake_vector};
use crate::embedding::http::{HttpEmbedder, HttpEmbedderConfig};

const DIMS: usize = 8;

/// A real `redis-server` on a loopback port, stopped when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Self {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}); install the redis-server package")
            });
        let server = Self { child, port };
        let client = redis::Client::open(server.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut connection) = client.get_connection()
                && redis::cmd("PING").query::<String>(&mut connection).is_ok()
            {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not answer on port {port}");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn set(&self, key: &str, value: &[u8]) {
        let mut connection = redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query::<()>(&mut connection)
            .unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(server: &FakeEmbedServer) -> Arc<dyn Embedder> {
    Arc::new(
        HttpEmbedder::new(HttpEmbedderConfig {
            max_retries: 0,
            breaker_failures: 0,
            ..HttpEmbedderConfig::new(server.url("/embed"), DIMS)
        })
        .unwrap(),
    )
}

fn cached(inner: Arc<dyn Embedder>, url: String) -> RedisCachedEmbedder {
    let config = RedisCacheConfig {
        timeout: Duration::from_millis(300),
        pause: Duration::from_millis(200),
        ..RedisCacheConfig::new(url)
    };
    RedisCachedEmbedder::new(inner, config).unwrap()
}

fn expected(texts: &[&str]) -> Vec<Vec<f32>> {
    texts.iter().map(|t| fake_vector(t, DIMS)).collect()
}

#[tokio::test]
async fn replicas_share_what_either_embedded() {
    let redis = RedisServer::start();
    let server = FakeEmbedServer::start(DIMS).await;
    let first = cached(http(&server), redis.url());
    let second = cached(http(&server), redis.url());
    assert_eq!(
        first.embed(&["a", "b"]).await.unwrap(),
        expected(&["a", "b"])
    );
    assert_eq!(server.state.requests(), 1);
    let texts = ["b", "c", "a"];
    assert_eq!(second.embed(&texts).await.unwrap(), expected(&texts));
    assert_eq!(server.state.requests(), 2, "only 'c' was embedded again");
    assert_eq!(
        second.stats(),
        RedisCacheStats {
            hits: 2,
            misses: 1,
            errors: 0,
            skipped: 0
        }
    );
    assert_eq!(second.health().detail["redis_cache"]["state"], "up");
}

#[tokio::test]
async fn redis_stopping_mid_run_never_fails_a_request() {
    let redis = RedisServer::start();
    let port = redis.port;
    let server = FakeEmbedServer::start(DIMS).await;
    let embedder = cached(http(&server), redis.url());
    assert_eq!(embedder.embed(&["x"]).await.unwrap(), expected(&["x"]));
    drop(redis);

    assert_eq!(embedder.embed(&["y"]).await.unwrap(), expected(&["y"]));
    assert_eq!(embedder.stats().errors, 1);
    let health = embedder.health();
    assert_eq!(health.detail["redis_cache"]["state"], "paused");
    assert!(health.detail["redis_cache"]["last_error"].is_string());
    // Paused: the next batch does not wait on Redis at all.
    assert_eq!(embedder.embed(&["x"]).await.unwrap(), expected(&["x"]));
    assert_eq!(embedder.stats().skipped, 1);
    assert_eq!(embedder.stats().errors, 1);

    let restarted = RedisServer::start_on(port);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(embedder.embed(&["z"]).await.unwrap(), expected(&["z"]));
    let fresh = cached(http(&server), restarted.url());
    let before = server.state.requests();
    assert_eq!(fresh.embed(&["z"]).await.unwrap(), expected(&["z"]));
    assert_eq!(
        server.state.requests(),
        before,
        "stored again once Redis came back"
    );
}

#[tokio::test]
async fn a_silent_redis_is_timed_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let server = FakeEmbedServer::start(DIMS).await;
    let embedder = cached(http(&server), format!("redis://{addr}"));
    let answer = tokio::time::timeout(Duration::from_secs(10), embedder.embed(&["q"]))
        .await
        .expect("a silent Redis must not hold the request");
    assert_eq!(answer.unwrap(), expected(&["q"]));
    assert_eq!(embedder.stats().errors, 1);
    holder.abort();
}

#[tokio::test]
async fn keys_name_the_model_and_values_of_another_length_are_misses() {
    let redis = RedisServer::start();
    let server = FakeEmbedServer::start(DIMS).await;
    let embedder = cached(http(&server), redis.url());
    let key = embedder.key("t");
    let (head, digest) = key.rsplit_once(':').unwrap();
    assert_eq!(
        head,
        format!("tool-registry:embedding:{}:{DIMS}", embedder.model_id())
    );
    assert_eq!(digest.len(), 64);
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    redis.set(&key, &[1, 2, 3]);
    assert_eq!(embedder.embed(&["t"]).await.unwrap(), expected(&["t"]));
    assert_eq!(embedder.stats().misses, 1);
    assert_eq!(embedder.embed(&["t"]).await.unwrap(), expected(&["t"]));
    assert_eq!(embedder.stats().hits, 1, "the bad value was replaced");
}

#[test]
fn a_bad_url_is_refused_at_start() {
    let inner: Arc<dyn Embedder> = Arc::new(crate::embedding::hash::HashEmbedder::new(DIMS));
    let err = RedisCachedEmbedder::new(inner, RedisCacheConfig::new("http://nope"));
    assert!(matches!(err, Err(RedisCacheError::InvalidUrl(_))));
}
