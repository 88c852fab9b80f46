//! The execution log: records, statistics, and records the database cannot hold.

use tool_registry::{
    config::ExecutionRecording,
    registry::recorder::{ExecutionRecorder, RecorderOptions},
};

use super::*;

/// A recorder over `store` with room for 64 queued records, retrying a refused write for
/// `retry_secs`.
fn start_recorder(
    store: &Arc<dyn ToolStore>,
    mode: ExecutionRecording,
    retry_secs: u64,
) -> ExecutionRecorder {
    ExecutionRecorder::start(
        store.clone(),
        RecorderOptions {
            capacity: 64,
            mode,
            retry_for: std::time::Duration::from_secs(retry_secs),
        },
    )
}

crate::on_both_backends!(
    executions_and_stats,
    calls_are_counted_per_interval,
    executions_keep_what_tools_return_or_say_what_changed,
    a_record_the_database_refuses_does_not_block_the_others,
    concurrent_durable_records_are_each_written_once_before_their_answer,
);

async fn executions_and_stats(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tool("exec_a", "x", &[], "a");
    let b = tool("exec_b", "x", &[], "b");
    store.create(&a).await.unwrap();
    store.create(&b).await.unwrap();

    let empty = store.tool_stats(a.id).await.unwrap();
    assert_eq!(
        (empty.calls, empty.success_rate, empty.p95_duration_ms),
        (0, None, None)
    );

    let durations = [10.0, 20.0, 30.0, 40.0, 1000.0];
    let statuses = [
        ExecutionStatus::Success,
        ExecutionStatus::Success,
        ExecutionStatus::Error,
        ExecutionStatus::Success,
        ExecutionStatus::Timeout,
    ];
    let mut records: Vec<Execution> = durations
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(i, (d, s))| execution(&a, s, *d, 100 - i as i64 * 10))
        .collect();
    records.push(execution(&b, ExecutionStatus::Success, 5.0, 1));
    store.record_executions(&records).await.unwrap();
    // Recording the same batch again (a retry) adds nothing.
    store.record_executions(&records).await.unwrap();
    store.record_executions(&[]).await.unwrap();

    let all = store
        .list_executions(
            &ExecutionFilter::default(),
            Page {
                limit: 3,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(all.total, 6);
    assert_eq!(all.items.len(), 3);
    assert_eq!(all.items[0], records[5], "newest first, stored exactly");

    let of_a = ExecutionFilter {
        tool_id: Some(a.id),
        ..ExecutionFilter::default()
    };
    assert_eq!(store.list_executions(&of_a, ALL).await.unwrap().total, 5);
    let errors = ExecutionFilter {
        tool_id: Some(a.id),
        status: Some(ExecutionStatus::Error),
        ..ExecutionFilter::default()
    };
    let errs = store.list_executions(&errors, ALL).await.unwrap();
    assert_eq!(errs.total, 1);
    assert_eq!(errs.items[0].error.as_deref(), Some("it failed"));
    let recent = ExecutionFilter {
        since: Some(now_micros() - Duration::seconds(65)),
        ..ExecutionFilter::default()
    };
    // Started 100, 90, 80, 70, 60 and 1 seconds ago: two are within 65 s.
    assert_eq!(store.list_executions(&recent, ALL).await.unwrap().total, 2);

    let stats = store.tool_stats(a.id).await.unwrap();
    assert_eq!(stats.calls, 5);
    assert_eq!(stats.successes, 3);
    assert_eq!(stats.errors, 1);
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.success_rate, Some(0.6));
    assert!((stats.mean_duration_ms.unwrap() - 220.0).abs() < 1e-9);
    assert!((stats.p50_duration_ms.unwrap() - 30.0).abs() < 1e-9);
    // Linear interpolation between 40 and 1000 at 0.95 * 4 = 3.8.
    assert!((stats.p95_duration_ms.unwrap() - 808.0).abs() < 1e-9);
    assert_eq!(stats.last_called_at, Some(records[4].started_at));

    // History outlives the tool.
    store.delete(a.id).await.unwrap();
    assert_eq!(store.tool_stats(a.id).await.unwrap().calls, 5);
}

async fn calls_are_counted_per_interval(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let a = tool("series_a", "x", &[], "a");
    let b = tool("series_b", "x", &[], "b");
    store.create_many(&[a.clone(), b.clone()]).await.unwrap();
    let minute = Duration::seconds(60);
    let now = now_micros();
    let since =
        now - Duration::minutes(10) - Duration::microseconds(now.timestamp_micros() % 60_000_000);
    let at = |tool: &Tool, status, duration_ms, offset: Duration| {
        let mut record = execution(tool, status, duration_ms, 0);
        record.started_at = since + offset;
        record.completed_at = record.started_at;
        record
    };
    store
        .record_executions(&[
            at(&a, ExecutionStatus::Success, 30.0, Duration::seconds(59)),
            at(&a, ExecutionStatus::Error, 10.0, Duration::zero()),
            at(&a, ExecutionStatus::Success, 20.0, Duration::seconds(30)),
            at(&a, ExecutionStatus::Timeout, 100.0, Duration::seconds(125)),
            // Before the series starts: not counted.
            at(
                &a,
                ExecutionStatus::Success,
                1.0,
                -Duration::microseconds(1),
            ),
            at(&b, ExecutionStatus::Success, 40.0, Duration::seconds(1)),
        ])
        .await
        .unwrap();

    let of_a = store.call_buckets(Some(a.id), since, minute).await.unwrap();
    assert_eq!(of_a.len(), 2, "only intervals with calls: {of_a:?}");
    assert_eq!(of_a[0].start, since);
    assert_eq!((of_a[0].calls, of_a[0].errors, of_a[0].timeouts), (3, 1, 0));
    assert!((of_a[0].p50_duration_ms.unwrap() - 20.0).abs() < 1e-9);
    // Linear interpolation between 20 and 30 at 0.95 * 2 = 1.9.
    assert!((of_a[0].p95_duration_ms.unwrap() - 29.0).abs() < 1e-9);
    assert_eq!(of_a[1].start, since + minute * 2);
    assert_eq!((of_a[1].calls, of_a[1].errors, of_a[1].timeouts), (1, 0, 1));
    assert_eq!(of_a[1].p50_duration_ms, Some(100.0));

    let every_tool = store.call_buckets(None, since, minute).await.unwrap();
    let calls: Vec<(DateTime<Utc>, u64)> = every_tool.iter().map(|b| (b.start, b.calls)).collect();
    assert_eq!(calls, [(since, 4), (since + minute * 2, 1)]);
    assert!((every_tool[0].p50_duration_ms.unwrap() - 25.0).abs() < 1e-9);

    let later = since + Duration::minutes(5);
    assert!(
        store
            .call_buckets(None, later, minute)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A NUL in a tool's answer or error (valid JSON and UTF-8) must not make the record, or
/// the batch it is written with, unstorable. The embedded store keeps it exactly; PostgreSQL,
/// which cannot hold U+0000, replaces it and says so in the note.
async fn executions_keep_what_tools_return_or_say_what_changed(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let t = tool("nul_answers", "x", &[], "answers with NULs");
    store.create(&t).await.unwrap();
    let before = execution(&t, ExecutionStatus::Success, 1.0, 3);
    let mut with_nul = execution(&t, ExecutionStatus::Success, 1.0, 2);
    with_nul.result = Some(json!({"x": "a\u{0}b", "k\u{0}": ["\u{0}"]}));
    let mut error_with_nul = execution(&t, ExecutionStatus::Error, 1.0, 1);
    error_with_nul.error = Some("upstream said \u{0} and stopped".into());
    let after = execution(&t, ExecutionStatus::Success, 1.0, 0);
    let batch = [
        before.clone(),
        with_nul.clone(),
        error_with_nul.clone(),
        after.clone(),
    ];
    store.record_executions(&batch).await.unwrap();

    for plain in [&before, &after] {
        assert_eq!(
            store.get_execution(plain.id).await.unwrap().as_ref(),
            Some(plain)
        );
    }
    let stored = store.get_execution(with_nul.id).await.unwrap().unwrap();
    let stored_error = store
        .get_execution(error_with_nul.id)
        .await
        .unwrap()
        .unwrap();
    match &stored.note {
        None => {
            assert_eq!(stored, with_nul, "stored exactly, or altered with a note");
            assert_eq!(stored_error, error_with_nul);
        }
        Some(note) => {
            assert!(note.contains("NUL") && note.contains("result"), "{note}");
            assert_eq!(
                stored.result,
                Some(json!({"x": "a\u{FFFD}b", "k\u{FFFD}": ["\u{FFFD}"]}))
            );
            let error_note = stored_error.note.as_deref().unwrap_or_default();
            assert!(error_note.contains("error"), "{error_note}");
            assert_eq!(
                stored_error.error.as_deref(),
                Some("upstream said \u{FFFD} and stopped")
            );
            assert_eq!(
                (stored.id, stored.arguments, stored.status),
                (with_nul.id, with_nul.arguments, with_nul.status)
            );
        }
    }
    assert_eq!(store.get_execution(Uuid::new_v4()).await.unwrap(), None);
    let all = store
        .list_executions(&ExecutionFilter::default(), ALL)
        .await
        .unwrap();
    assert_eq!(all.total, 4);
}

/// One record the database refuses is found by splitting its batch and stored without what
/// was refused, with the reason; the records around it are stored whole. Before, the batch
/// was retried for ever and nothing was recorded again.
async fn a_record_the_database_refuses_does_not_block_the_others(backend: Backend) {
    let (db, store) = fresh(backend).await;
    refuse_poisoned_records(&db).await;
    let t = tool("sometimes_poisoned", "x", &[], "answers badly");
    store.create(&t).await.unwrap();
    let recorder = start_recorder(&store, ExecutionRecording::Deferred, 1);
    let good: Vec<Execution> = (0..3)
        .map(|i| execution(&t, ExecutionStatus::Success, 1.0, 10 - i))
        .collect();
    let mut bad_result = execution(&t, ExecutionStatus::Success, 1.0, 5);
    bad_result.result = Some(json!({"text": "poison"}));
    let mut bad_everything = execution(&t, ExecutionStatus::Error, 1.0, 4);
    bad_everything.arguments = json!({"q": "poison"});
    bad_everything.result = Some(json!("poison"));
    for record in [&good[0], &bad_result, &good[1], &bad_everything, &good[2]] {
        recorder.record(record.clone()).await;
    }
    tokio::time::timeout(std::time::Duration::from_secs(20), recorder.flush())
        .await
        .expect("the writer must get past a refused record");

    for record in &good {
        assert_eq!(
            store.get_execution(record.id).await.unwrap().as_ref(),
            Some(record)
        );
    }
    let reduced = store.get_execution(bad_result.id).await.unwrap().unwrap();
    assert_eq!(reduced.result, None);
    assert_eq!(reduced.arguments, bad_result.arguments);
    let note = reduced.note.unwrap();
    assert!(
        note.contains("without its result") && note.contains("poisoned record"),
        "{note}"
    );
    let bare = store
        .get_execution(bad_everything.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bare.result, bare.arguments), (None, json!({})));
    assert_eq!(bare.status, ExecutionStatus::Error);
    assert!(bare.note.unwrap().contains("arguments"));

    let health = recorder.health();
    assert_eq!(
        (health.written, health.reduced, health.lost, health.backlog),
        (5, 2, 0, 0)
    );
    assert!(!health.failing, "the last write succeeded");
    assert!(health.last_error.unwrap().contains("poisoned record"));
}

/// Many callers recording at once (durable): each returns only once its record is stored,
/// every record is stored exactly once, and a flush afterwards leaves no backlog. The
/// recorder writes several batches at once where the store allows it.
async fn concurrent_durable_records_are_each_written_once_before_their_answer(backend: Backend) {
    let (_db, store) = fresh(backend).await;
    let t = tool("called_at_once", "x", &[], "called by many");
    store.create(&t).await.unwrap();
    let recorder = start_recorder(&store, ExecutionRecording::Durable, 5);
    let mut callers = JoinSet::new();
    for caller in 0..32 {
        let (recorder, store, t) = (recorder.clone(), store.clone(), t.clone());
        callers.spawn(async move {
            let mut ids = Vec::new();
            for call in 0..10 {
                let record = execution(&t, ExecutionStatus::Success, 1.0, caller * 10 + call);
                recorder.record(record.clone()).await;
                // Answered: the record is there for any reader.
                assert_eq!(
                    store.get_execution(record.id).await.unwrap().as_ref(),
                    Some(&record)
                );
                ids.push(record.id);
            }
            ids
        });
    }
    let mut answered = std::collections::HashSet::new();
    while let Some(ids) = callers.join_next().await {
        answered.extend(ids.unwrap());
    }
    assert_eq!(answered.len(), 320);
    recorder.flush().await;
    let stored = store
        .list_executions(
            &ExecutionFilter {
                tool_id: Some(t.id),
                ..Default::default()
            },
            ALL,
        )
        .await
        .unwrap();
    assert_eq!(stored.total, 320);
    let stored: std::collections::HashSet<Uuid> = stored.items.iter().map(|e| e.id).collect();
    assert_eq!(stored, answered);
    let health = recorder.health();
    assert_eq!((health.written, health.lost, health.backlog), (320, 0, 0));
}
