//! Tests of the local embedder, on the model of `EMBEDDING_MODEL_DIR` or `models/`.

use super::*;

/// `EMBEDDING_MODEL_DIR`, else `models/all-MiniLM-L6-v2` in the crate. Missing is a failure,
/// not a skip: the test command fetches the model first.
fn model_dir() -> PathBuf {
    let dir = std::env::var_os("EMBEDDING_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2"));
    assert!(
        dir.join(MODEL_FILE).is_file(),
        "no embedding model in {}: run scripts/fetch-model.sh (or set EMBEDDING_MODEL_DIR)",
        dir.display()
    );
    dir
}

fn embedder() -> LocalEmbedder {
    LocalEmbedder::load(&model_dir(), None).expect("load the local model")
}

struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let text = std::fs::read_to_string(&path).expect("read the reference fixture");
    let json: serde_json::Value = serde_json::from_str(&text).expect("parse the fixture");
    let items = json["items"].as_array().expect("items");
    let texts = items
        .iter()
        .map(|i| i["text"].as_str().expect("text").to_owned())
        .collect();
    let vectors = items
        .iter()
        .map(|i| {
            i["vector"]
                .as_array()
                .expect("vector")
                .iter()
                .map(|x| x.as_f64().expect("float") as f32)
                .collect()
        })
        .collect();
    Reference { texts, vectors }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn norm(a: &[f32]) -> f64 {
    a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt()
}

#[tokio::test]
async fn matches_the_sentence_transformers_reference() {
    let embedder = embedder();
    let reference = reference();
    assert!(reference.texts.len() >= 10, "fixture too small");
    let texts: Vec<&str> = reference.texts.iter().map(String::as_str).collect();

    let batched = embedder.embed(&texts).await.expect("embed the batch");
    assert_eq!(batched.len(), texts.len());
    for (i, text) in texts.iter().enumerate() {
        let single = embedder.embed(&[text]).await.expect("embed one text");
        assert_eq!(single.len(), 1);
        let want = &reference.vectors[i];
        for (how, got) in [("alone", &single[0]), ("in a batch", &batched[i])] {
            assert_eq!(got.len(), 384, "{text:?} {how}: dimensions");
            assert!(
                (norm(got) - 1.0).abs() < 1e-4,
                "{text:?} {how}: not unit norm"
            );
            let cos = cosine(got, want);
            assert!(
                cos >= 0.999,
                "{text:?} {how}: cosine {cos} to the reference"
            );
        }
        let cos = cosine(&single[0], &batched[i]);
        assert!(cos >= 0.9999, "{text:?}: alone vs batched cosine {cos}");
    }
}

#[tokio::test]
async fn keeps_input_order_across_lengths_and_batches() {
    let embedder = embedder();
    // More texts than one batch, lengths mixed so that sorting reorders them.
    let texts: Vec<String> = (0..BATCH_SIZE + 7)
        .map(|i| {
            let words = if i % 3 == 0 { 40 } else { 1 + i % 5 };
            format!("tool {i} {}", "does something useful ".repeat(words))
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let all = embedder.embed(&refs).await.expect("embed all");
    assert_eq!(all.len(), texts.len());
    for i in [0, 1, 2, 5, BATCH_SIZE, BATCH_SIZE + 6] {
        let one = embedder.embed(&[refs[i]]).await.expect("embed one");
        let cos = cosine(&one[0], &all[i]);
        assert!(
            cos >= 0.9999,
            "text {i}: cosine {cos} to its own batched vector"
        );
    }
    // Distinct texts give distinct vectors in their own slots.
    assert!(cosine(&all[0], &all[1]) < 0.9999);

    // Concurrent calls interleave batch by batch and each gets its own answers.
    let query = [refs[3]];
    let (bulk, one) = tokio::join!(embedder.embed(&refs), embedder.embed(&query));
    let (bulk, one) = (bulk.expect("bulk"), one.expect("one"));
    assert_eq!(bulk.len(), refs.len());
    assert!(cosine(&one[0], &all[3]) >= 0.9999);
    for (a, b) in bulk.iter().zip(&all) {
        assert!(cosine(a, b) >= 0.9999);
    }
}

#[test]
fn batches_hold_at_most_their_count_and_token_budget() {
    assert_eq!(batch_sizes(&[]), Vec::<usize>::new());
    // Short texts: the count caps.
    assert_eq!(batch_sizes(&[10; 70]), [32, 32, 6]);
    // Texts of the longest kind: eight fill the budget.
    assert_eq!(batch_sizes(&[MAX_SEQ_LEN; 17]), [8, 8, 1]);
    // Growing lengths: each batch closes where its longest text would pass the budget.
    let lengths = [20, 20, 30, 100, 100, 200, 200, 200, 200, 200, 256, 256];
    let sizes = batch_sizes(&lengths);
    assert_eq!(sizes, [3, 8, 1]);
    let mut start = 0;
    for size in sizes {
        let batch = &lengths[start..start + size];
        let padded = batch.len() * batch[size - 1];
        assert!(padded <= MAX_BATCH_TOKENS, "{batch:?}");
        assert!(2 * padded <= 3 * batch.iter().sum::<usize>(), "{batch:?}");
        start += size;
    }
    // The steps of a request, one much longer than the others: the short ones are not
    // padded to its length.
    assert_eq!(batch_sizes(&[8, 9, 10, 40]), [3, 1]);
    assert_eq!(batch_sizes(&[12, 14, 15, 16]), [4]);
    // A text over the budget (not possible after truncation, but harmless) goes alone.
    assert_eq!(batch_sizes(&[10, 5000, 6000]), [1, 1, 1]);
}

#[tokio::test]
async fn a_query_is_answered_while_tool_texts_are_still_embedding() {
    let embedder = embedder();
    let long = "reads a file from the disk and returns its lines ".repeat(40);
    let documents: Vec<&str> = vec![long.as_str(); 16];
    let bulk = embedder.embed_documents(&documents);
    tokio::pin!(bulk);
    // Let the bulk call start its first batch.
    let started = tokio::select! {
        _ = &mut bulk => false,
        () = tokio::time::sleep(std::time::Duration::from_millis(50)) => true,
    };
    assert!(started, "16 long texts took less than 50 ms");
    let query = tokio::select! {
        biased;
        query = embedder.embed(&["open a file"]) => query.expect("query"),
        _ = &mut bulk => panic!("the query waited for every tool text"),
    };
    assert_eq!(query.len(), 1);
    let vectors = bulk.await.expect("tool texts");
    assert_eq!(vectors.len(), 16);
    let alone = embedder.embed(&[long.as_str()]).await.expect("one text");
    assert!(cosine(&vectors[15], &alone[0]) >= 0.9999);
}

#[tokio::test]
async fn empty_input_gives_empty_output() {
    let embedder = embedder();
    assert!(embedder.embed(&[]).await.expect("embed nothing").is_empty());
}

#[test]
fn reports_itself() {
    let embedder = embedder();
    assert_eq!(embedder.dimensions(), 384);
    assert_eq!(embedder.model_id(), MODEL_ID);
    let health = embedder.health();
    assert_eq!(health.provider, "local");
    assert_eq!(health.status, "up");
    assert_eq!(health.dimensions, 384);
}

#[test]
fn missing_folder_names_the_fetch_script() {
    let err = LocalEmbedder::load(Path::new("/nonexistent/model/dir"), None).unwrap_err();
    assert!(matches!(err, LoadError::MissingFile { .. }));
    assert!(err.to_string().contains("scripts/fetch-model.sh"), "{err}");
}

#[test]
fn refuses_another_model() {
    let dir = std::env::temp_dir().join(format!("local-embedder-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = std::fs::read_to_string(model_dir().join(CONFIG_FILE)).expect("config");
    let config = config.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 12");
    std::fs::write(dir.join(CONFIG_FILE), config).expect("write config");
    std::fs::write(dir.join(MODEL_FILE), b"").expect("write model");
    std::fs::write(dir.join(TOKENIZER_FILE), b"{}").expect("write tokenizer");
    let err = LocalEmbedder::load(&dir, None).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        matches!(err, LoadError::UnexpectedModel { layers: 12, .. }),
        "{err}"
    );
}

#[test]
fn clip_respects_char_boundaries() {
    assert_eq!(clip("héllo", 2), "h");
    assert_eq!(clip("héllo", 3), "hé");
    assert_eq!(clip("abc", 10), "abc");
}
