//! deploy/scripts/backup.sh and deploy/scripts/restore.sh against the test PostgreSQL: the restored
//! database answers with the same tools, vectors and execution history.

use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, tool_definition};

/// The folder of pg_dump and pg_restore matching the test server.
fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return dir.into();
    }
    let out = Command::new("bash")
        .args(["scripts/dev/dev-postgres.sh", "bin"])
        .output()
        .expect("run scripts/dev/dev-postgres.sh bin");
    assert!(out.status.success(), "{out:?}");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn script(name: &str, database_url: &str, args: &[&str], backup_dir: &std::path::Path) -> String {
    let path = format!(
        "{}:{}",
        pg_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(format!("deploy/scripts/{name}"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("BACKUP_DIR", backup_dir)
        .env("RESTORE_CONFIRM", "yes")
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn snapshot(app: &TestApp) -> (Value, Value, Value) {
    let (_, tools) = app
        .get("/admin/tools?include_inactive=true&limit=500")
        .await;
    let (_, executions) = app.get("/admin/executions?limit=500").await;
    let (_, found) = app
        .post(
            "/mcp/find_tool",
            &json!({"query": "reverse the letters of a word", "limit": 5}),
        )
        .await;
    let ranked: Vec<Value> = found["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| json!([hit["tool"]["name"], hit["score"]]))
        .collect();
    (tools, executions, Value::Array(ranked))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_then_restore_answers_the_same() {
    crate::skip_without_postgres!();
    let original = TestDb::new(Backend::Postgres).await;
    let mut settings = original.settings();
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings.clone()).await;
    app.register(&tool_definition("custom.echo")).await;
    for text in ["abc", "héllo", "racecar"] {
        let (status, _) = app
            .post(
                "/mcp/call_tool",
                &json!({"name": "string_reverse", "arguments": {"text": text}}),
            )
            .await;
        assert_eq!(status, 200);
    }
    for _ in 0..100 {
        if app.get("/admin/executions").await.1["total"] == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = snapshot(&app).await;
    assert_eq!(before.1["total"], 3);
    app.stop().await;

    let backups = tempfile::tempdir().unwrap();
    let file = script(
        "backup.sh",
        original.database_url().unwrap(),
        &[],
        backups.path(),
    );
    assert!(std::path::Path::new(&file).exists(), "{file}");

    let restored = TestDb::new(Backend::Postgres).await;
    script(
        "restore.sh",
        restored.database_url().unwrap(),
        &[&file],
        backups.path(),
    );
    let mut settings = restored.settings();
    settings.tools.register_builtins = true;
    let app = TestApp::spawn(settings).await;
    let after = snapshot(&app).await;
    assert_eq!(after.0, before.0, "the same tools");
    assert_eq!(after.1, before.1, "the same executions");
    assert_eq!(after.2, before.2, "the same find_tool answer");
    app.stop().await;
}
