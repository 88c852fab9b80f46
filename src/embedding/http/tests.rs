//! The HTTP embedder against a fake embedding service on loopback.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

use serde_json::{Value, json};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use super::attempt::retry_after;
use super::breaker::BreakerState;
use super::format::{check_vectors, parse_response};
use super::test_server::{FakeEmbedServer, fake_vector};
use super::*;
use crate::embedding::{EmbedError, Embedder};

const DIMS: usize = 8;

/// Fast settings: short backoff, a breaker that stays out of the way.
fn config(server: &FakeEmbedServer, path: &str) -> HttpEmbedderConfig {
    HttpEmbedderConfig {
        timeout: Duration::from_secs(5),
        max_retries: 3,
        batch_size: 16,
        breaker_failures: 100,
        breaker_cooldown: Duration::from_millis(100),
        retry_min_delay: Duration::from_millis(10),
        retry_max_delay: Duration::from_millis(40),
        ..HttpEmbedderConfig::new(server.url(path), DIMS)
    }
}

fn expected(texts: &[&str]) -> Vec<Vec<f32>> {
    texts.iter().map(|t| fake_vector(t, DIMS)).collect()
}

const TEXTS: [&str; 3] = ["get the weather", "send an email", "convert currency"];

async fn round_trip(path: &str, format: EmbeddingFormat, model: Option<&str>) -> FakeEmbedServer {
    let server = FakeEmbedServer::start(DIMS).await;
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        format,
        model: model.map(str::to_owned),
        api_key: Some("sk-test-123".to_owned()),
        ..config(&server, path)
    })
    .unwrap();
    let out = embedder.embed(&TEXTS).await.unwrap();
    assert_eq!(out, expected(&TEXTS));
    assert_eq!(server.state.requests(), 1);
    let last = server.state.last().unwrap();
    assert_eq!(last.path, path);
    assert_eq!(last.texts, TEXTS);
    assert_eq!(last.authorization.as_deref(), Some("Bearer sk-test-123"));
    assert_eq!(embedder.health().status, "up");
    server
}

#[tokio::test]
async fn openai_round_trip_sorted_by_index() {
    let server = round_trip(
        "/v1/embeddings",
        EmbeddingFormat::OpenAi,
        Some("text-embedding-3-small"),
    )
    .await;
    assert_eq!(
        server.state.last().unwrap().model.as_deref(),
        Some("text-embedding-3-small")
    );
}

#[tokio::test]
async fn openai_without_model_leaves_it_out() {
    let server = round_trip("/v1/embeddings", EmbeddingFormat::OpenAi, None).await;
    assert_eq!(server.state.last().unwrap().model, None);
}

#[tokio::test]
async fn tei_round_trip() {
    round_trip("/embed", EmbeddingFormat::Tei, None).await;
}

#[tokio::test]
async fn ollama_round_trip() {
    let server = round_trip(
        "/api/embed",
        EmbeddingFormat::Ollama,
        Some("nomic-embed-text"),
    )
    .await;
    assert_eq!(
        server.state.last().unwrap().model.as_deref(),
        Some("nomic-embed-text")
    );
}

#[tokio::test]
async fn generic_round_trip() {
    round_trip("/generic", EmbeddingFormat::Generic, None).await;
}

#[tokio::test]
async fn auto_picks_the_request_shape_from_the_path() {
    for (path, shape) in [
        ("/v1/embeddings", EmbeddingFormat::OpenAi),
        ("/embed", EmbeddingFormat::Tei),
        ("/api/embed", EmbeddingFormat::Ollama),
    ] {
        let server = round_trip(path, EmbeddingFormat::Auto, Some("m")).await;
        let embedder = HttpEmbedder::new(HttpEmbedderConfig {
            model: Some("m".to_owned()),
            ..config(&server, path)
        })
        .unwrap();
        assert_eq!(embedder.request_format(), shape, "{path}");
    }
}

#[tokio::test]
async fn auto_reads_the_answer_by_its_shape() {
    // An OpenAI-shaped request on an unknown path, answered with a bare array.
    let server = round_trip("/custom/vectors", EmbeddingFormat::Auto, None).await;
    assert_eq!(server.state.last().unwrap().path, "/custom/vectors");
    // An explicit format still understands another dialect's answer.
    round_trip("/custom/vectors", EmbeddingFormat::OpenAi, None).await;
}

#[test]
fn path_detection() {
    use EmbeddingFormat::*;
    for (path, want) in [
        ("/v1/embeddings", OpenAi),
        ("/openai/deployments/x/embeddings", OpenAi),
        ("/embeddings/", OpenAi),
        ("/embed", Tei),
        ("/api/embed", Ollama),
        ("/api/embed/", Ollama),
        ("/", OpenAi),
        ("/vectors", OpenAi),
    ] {
        assert_eq!(EmbeddingFormat::detect_from_path(path), want, "{path}");
    }
    assert_eq!("OpenAI".parse::<EmbeddingFormat>(), Ok(OpenAi));
    assert_eq!(" tei ".parse::<EmbeddingFormat>(), Ok(Tei));
    assert!("grpc".parse::<EmbeddingFormat>().is_err());
    assert_eq!(serde_json::to_value(OpenAi).unwrap(), "openai");
    assert_eq!(
        serde_json::from_value::<EmbeddingFormat>(json!("ollama")).unwrap(),
        Ollama
    );
}

#[test]
fn response_shapes() {
    let v = |s: &str| parse_response(s.as_bytes());
    assert_eq!(
        v(r#"[[1,2],[3,4]]"#).unwrap(),
        vec![vec![1.0, 2.0], vec![3.0, 4.0]]
    );
    assert_eq!(
        v(r#"{"embeddings":[[1,2]]}"#).unwrap(),
        vec![vec![1.0, 2.0]]
    );
    assert_eq!(v(r#"{"embedding":[1,2]}"#).unwrap(), vec![vec![1.0, 2.0]]);
    assert_eq!(
        v(r#"{"data":[{"embedding":[3],"index":1},{"embedding":[1],"index":0}]}"#).unwrap(),
        vec![vec![1.0], vec![3.0]]
    );
    assert_eq!(
        v(r#"{"data":[{"embedding":[3]},{"embedding":[1]}]}"#).unwrap(),
        vec![vec![3.0], vec![1.0]]
    );
    assert!(v(r#"{"data":[{"embedding":[3],"index":0},{"embedding":[1],"index":0}]}"#).is_err());
    assert!(v(r#"{"data":[{"embedding":[3],"index":5}]}"#).is_err());
    assert!(v(r#"{"data":[{"embedding":[3],"index":0},{"embedding":[1]}]}"#).is_err());
    assert!(v(r#"{"vectors":[[1]]}"#).is_err());
    assert!(v(r#"[[1,"x"]]"#).is_err());
    assert!(v("not json").unwrap_err().contains("not json"));
    assert!(check_vectors(&[vec![1e38 * 10.0]], 1, 1).is_err());
}

#[tokio::test]
async fn batches_in_chunks_and_keeps_order() {
    let server = FakeEmbedServer::start(DIMS).await;
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        batch_size: 2,
        ..config(&server, "/embed")
    })
    .unwrap();
    let texts = ["a", "b", "c", "d", "e"];
    assert_eq!(embedder.embed(&texts).await.unwrap(), expected(&texts));
    assert_eq!(
        server.state.received_texts(),
        vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]
    );
    let stats = embedder.stats();
    assert_eq!(
        (stats.calls, stats.batches, stats.requests, stats.texts),
        (1, 3, 3, 5)
    );
}

#[tokio::test]
async fn empty_input_sends_nothing() {
    let server = FakeEmbedServer::start(DIMS).await;
    let embedder = HttpEmbedder::new(config(&server, "/embed")).unwrap();
    assert_eq!(embedder.embed(&[]).await.unwrap(), Vec::<Vec<f32>>::new());
    assert_eq!(server.state.requests(), 0);
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.fail_next.store(2, SeqCst);
    let embedder = HttpEmbedder::new(config(&server, "/v1/embeddings")).unwrap();
    assert_eq!(embedder.embed(&TEXTS).await.unwrap(), expected(&TEXTS));
    assert_eq!(server.state.requests(), 3);
    let stats = embedder.stats();
    assert_eq!((stats.requests, stats.retries, stats.failures), (3, 2, 0));
}

#[tokio::test]
async fn gives_up_after_max_retries_as_unavailable() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.fail_always.store(true, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        max_retries: 2,
        ..config(&server, "/v1/embeddings")
    })
    .unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Unavailable(m) if m.contains("500")),
        "{err:?}"
    );
    assert_eq!(server.state.requests(), 3);
    assert_eq!(embedder.stats().failures, 1);
    let health = embedder.health();
    assert!(
        health.detail["last_error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert_eq!(health.detail["breaker"]["consecutive_failures"], 1);
}

#[tokio::test]
async fn never_retries_400() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.reject.store(true, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        breaker_failures: 1,
        ..config(&server, "/embed")
    })
    .unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Rejected(m) if m.contains("400") && m.contains("input too long")),
        "{err:?}"
    );
    assert_eq!(server.state.requests(), 1);
    // A refused request is not the endpoint failing: the breaker stays closed.
    assert_eq!(embedder.breaker().state().state, BreakerState::Closed);
    assert_eq!(embedder.stats().rejected, 1);
    assert!(embedder.embed(&TEXTS).await.is_err());
    assert_eq!(server.state.requests(), 2);
}

#[tokio::test]
async fn a_request_of_the_wrong_shape_is_rejected() {
    let server = FakeEmbedServer::start(DIMS).await;
    // The generic route refuses OpenAI's `input` field.
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        format: EmbeddingFormat::OpenAi,
        ..config(&server, "/generic")
    })
    .unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(matches!(err, EmbedError::Rejected(_)), "{err:?}");
    assert_eq!(server.state.requests(), 1);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.too_many_next.store(1, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        model: Some("all-minilm".to_owned()),
        ..config(&server, "/api/embed")
    })
    .unwrap();
    let start = Instant::now();
    assert_eq!(embedder.embed(&TEXTS).await.unwrap(), expected(&TEXTS));
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.state.requests(), 2);
    assert_eq!(embedder.stats().retries, 1);
}

#[tokio::test]
async fn retry_after_is_capped() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.too_many_next.store(1, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        retry_after_cap: Duration::from_millis(20),
        format: EmbeddingFormat::Generic,
        ..config(&server, "/generic")
    })
    .unwrap();
    embedder.embed(&TEXTS).await.unwrap();
    assert_eq!(server.state.requests(), 2);
}

#[tokio::test]
async fn persistent_429_ends_unavailable() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.too_many_next.store(100, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        max_retries: 1,
        retry_after_cap: Duration::from_millis(10),
        format: EmbeddingFormat::Generic,
        ..config(&server, "/generic")
    })
    .unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Unavailable(m) if m.contains("429")),
        "{err:?}"
    );
    assert_eq!(server.state.requests(), 2);
}

#[tokio::test]
async fn timeout_is_unavailable() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.stall.store(true, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        timeout: Duration::from_millis(200),
        max_retries: 1,
        ..config(&server, "/embed")
    })
    .unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Unavailable(m) if m.contains("timed out")),
        "{err:?}"
    );
    assert_eq!(server.state.requests(), 2, "timeouts are retried");
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        max_retries: 1,
        retry_min_delay: Duration::from_millis(1),
        ..HttpEmbedderConfig::new(format!("http://{addr}/embed"), DIMS)
    })
    .unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(matches!(err, EmbedError::Unavailable(_)), "{err:?}");
    assert_eq!(embedder.stats().requests, 2);
}

#[tokio::test]
async fn wrong_dimension_is_a_bad_response_not_retried() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.wrong_dimension.store(true, SeqCst);
    let embedder = HttpEmbedder::new(config(&server, "/v1/embeddings")).unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::BadResponse(m) if m.contains("dimensions")),
        "{err:?}"
    );
    assert_eq!(server.state.requests(), 1);
    assert_eq!(embedder.breaker().state().consecutive_failures, 1);
}

#[tokio::test]
async fn wrong_count_is_a_bad_response_not_retried() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.wrong_count.store(true, SeqCst);
    let embedder = HttpEmbedder::new(config(&server, "/embed")).unwrap();
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::BadResponse(m) if m.contains("expected 3 vectors, got 2")),
        "{err:?}"
    );
    assert_eq!(server.state.requests(), 1);
}

#[tokio::test]
async fn breaker_opens_fails_fast_then_half_opens_and_closes() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.fail_always.store(true, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        max_retries: 0,
        breaker_failures: 2,
        breaker_cooldown: Duration::from_millis(300),
        ..config(&server, "/embed")
    })
    .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            embedder.embed(&TEXTS).await,
            Err(EmbedError::Unavailable(_))
        ));
    }
    assert_eq!(server.state.requests(), 2);
    assert_eq!(embedder.health().status, "down");
    assert_eq!(embedder.health().detail["breaker"]["state"], "open");

    // Open: fails fast, nothing reaches the server.
    let err = embedder.embed(&TEXTS).await.unwrap_err();
    assert_eq!(err, EmbedError::Unavailable("circuit open".to_owned()));
    assert_eq!(server.state.requests(), 2);
    assert_eq!(embedder.stats().short_circuited, 1);

    // After the cool-down one trial goes through; the endpoint is back, so it closes.
    server.state.fail_always.store(false, SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(embedder.embed(&TEXTS).await.unwrap(), expected(&TEXTS));
    assert_eq!(server.state.requests(), 3);
    assert_eq!(embedder.breaker().state().state, BreakerState::Closed);
    assert_eq!(embedder.health().status, "up");
    assert_eq!(embedder.health().detail["last_error"], Value::Null);
}

#[tokio::test]
async fn failed_trial_reopens_the_breaker() {
    let server = FakeEmbedServer::start(DIMS).await;
    server.state.wrong_count.store(true, SeqCst);
    let embedder = HttpEmbedder::new(HttpEmbedderConfig {
        breaker_failures: 1,
        breaker_cooldown: Duration::from_millis(300),
        ..config(&server, "/embed")
    })
    .unwrap();
    assert!(matches!(
        embedder.embed(&TEXTS).await,
        Err(EmbedError::BadResponse(_))
    ));
    assert_eq!(embedder.breaker().state().state, BreakerState::Open);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        embedder.embed(&TEXTS).await,
        Err(EmbedError::BadResponse(_))
    ));
    assert_eq!(server.state.requests(), 2);
    let state = embedder.breaker().state();
    assert_eq!((state.state, state.times_opened), (BreakerState::Open, 2));
    assert_eq!(
        embedder.embed(&TEXTS).await.unwrap_err(),
        EmbedError::Unavailable("circuit open".to_owned())
    );
    assert_eq!(server.state.requests(), 2);
}

#[tokio::test]
async fn health_and_debug_never_show_the_key() {
    let server = FakeEmbedServer::start(DIMS).await;
    let config = HttpEmbedderConfig {
        api_key: Some("sk-very-secret".to_owned()),
        url: format!(
            "http://user:pw@{}/v1/embeddings?api-version=2024&key=qs-secret",
            server.addr
        ),
        ..config(&server, "/")
    };
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("sk-very-secret") && !debug.contains("qs-secret") && !debug.contains("pw@"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
    let embedder = HttpEmbedder::new(config).unwrap();
    assert!(!format!("{embedder:?}").contains("sk-very-secret"));
    embedder.embed(&TEXTS).await.unwrap();
    let health = serde_json::to_string(&embedder.health()).unwrap();
    assert!(
        !health.contains("sk-very-secret")
            && !health.contains("qs-secret")
            && !health.contains("pw@"),
        "{health}"
    );
    assert!(
        health.contains(&format!("http://{}/v1/embeddings?…", server.addr)),
        "{health}"
    );
    let h = embedder.health();
    assert_eq!(
        (h.provider.as_str(), h.status, h.dimensions),
        ("http", "up", DIMS)
    );
    assert_eq!(h.detail["format"], "auto");
    assert_eq!(h.detail["request_format"], "openai");
    assert_eq!(h.detail["stats"]["requests"], 1);
}

#[test]
fn model_id_names_the_model_or_the_endpoint() {
    let with_model = HttpEmbedder::new(HttpEmbedderConfig {
        model: Some("bge-small".to_owned()),
        ..HttpEmbedderConfig::new("http://tei:8080/embed", 384)
    })
    .unwrap();
    assert_eq!(with_model.model_id(), "http:bge-small:384");
    let without = HttpEmbedder::new(HttpEmbedderConfig::new(
        "https://me:pw@emb.example/v1/embeddings?k=1",
        768,
    ))
    .unwrap();
    assert_eq!(without.model_id(), "http:emb.example/v1/embeddings:768");
}

#[test]
fn invalid_settings_are_refused() {
    let base = || HttpEmbedderConfig::new("http://localhost:8080/embed", 384);
    assert!(
        HttpEmbedder::new(HttpEmbedderConfig {
            url: "not a url".into(),
            ..base()
        })
        .is_err()
    );
    assert!(
        HttpEmbedder::new(HttpEmbedderConfig {
            url: "ftp://x/embed".into(),
            ..base()
        })
        .is_err()
    );
    assert!(
        HttpEmbedder::new(HttpEmbedderConfig {
            dimensions: 0,
            ..base()
        })
        .is_err()
    );
    assert!(
        HttpEmbedder::new(HttpEmbedderConfig {
            batch_size: 0,
            ..base()
        })
        .is_err()
    );
    assert!(
        HttpEmbedder::new(HttpEmbedderConfig {
            timeout: Duration::ZERO,
            ..base()
        })
        .is_err()
    );
    let ollama = HttpEmbedderConfig {
        url: "http://localhost:11434/api/embed".into(),
        ..base()
    };
    assert!(
        HttpEmbedder::new(ollama.clone()).is_err(),
        "Ollama needs a model"
    );
    assert!(
        HttpEmbedder::new(HttpEmbedderConfig {
            model: Some("all-minilm".into()),
            ..ollama
        })
        .is_ok()
    );
    assert!(HttpEmbedder::new(base()).is_ok());
}

#[test]
fn retry_after_parsing() {
    let mut headers = HeaderMap::new();
    assert_eq!(retry_after(&headers), None);
    headers.insert(RETRY_AFTER, "7".parse().unwrap());
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    headers.insert(
        RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&headers), None);
}
