//! The project's task runner: `cargo xtask <task> [ARGS…]`; `cargo xtask` lists the tasks.
//!
//! Each task is one command (a script or a cargo invocation), written once here so every
//! entry point of the repository has a name and a line saying what it is for. It needs
//! nothing beyond cargo and compiles in seconds (only the standard library).

use std::{
    env,
    path::PathBuf,
    process::{Command, ExitCode},
};

/// A task: its name, who it is for, what it does, and the command it runs (arguments
/// given after the task's name are appended).
struct Task {
    name: &'static str,
    audience: &'static str,
    about: &'static str,
    command: &'static [&'static str],
}

const TASKS: &[Task] = &[
    Task {
        name: "run",
        audience: "everyone",
        about: "serve on http://127.0.0.1:8080 (fetch the model once first: `cargo xtask model`)",
        command: &["cargo", "run", "--release", "--"],
    },
    Task {
        name: "model",
        audience: "everyone",
        about: "put the offline embedding model into ./models/ (once)",
        command: &["bash", "scripts/fetch-model.sh"],
    },
    Task {
        name: "test",
        audience: "developers, CI",
        about: "lints, deployment checks, every test, live checks, fuzzing (what CI runs)",
        command: &["bash", "scripts/test.sh"],
    },
    Task {
        name: "unit",
        audience: "developers",
        about: "the test suite only (set TEST_DATABASE_URL for the PostgreSQL variants)",
        command: &["cargo", "nextest", "run"],
    },
    Task {
        name: "lint",
        audience: "developers",
        about: "formatting and clippy, as the test command checks them",
        command: &[
            "sh",
            "-c",
            "cargo fmt --all -- --check && cargo clippy --all-targets -- -D warnings",
        ],
    },
    Task {
        name: "postgres",
        audience: "developers",
        about: "a throwaway PostgreSQL with pgvector on loopback: `start` or `stop`",
        command: &["bash", "scripts/dev/dev-postgres.sh"],
    },
    Task {
        name: "imports",
        audience: "developers",
        about: "the module import graph; fails on an upward import or a circle",
        command: &["python3", "scripts/dev/import-graph.py"],
    },
    Task {
        name: "reference-embeddings",
        audience: "developers (one-off)",
        about: "regenerate the reference vectors the local model's test compares with",
        command: &["python3", "scripts/dev/make-reference-embeddings.py"],
    },
    Task {
        name: "live-checks",
        audience: "test",
        about: "start the server and run real clients against it (MCP SDK, examples, fuzz)",
        command: &["bash", "scripts/test/live-checks.sh"],
    },
    Task {
        name: "console-check",
        audience: "test",
        about: "the web console in headless Chromium against two live servers",
        command: &["bash", "scripts/test/console-check.sh"],
    },
    Task {
        name: "mcp-python-check",
        audience: "test",
        about: "the official MCP Python SDK against a running server",
        command: &["bash", "scripts/test/mcp-python-check.sh"],
    },
    Task {
        name: "api-fuzz",
        audience: "test",
        about: "schemathesis over every documented route of a running server",
        command: &["bash", "scripts/test/api-fuzz.sh"],
    },
    Task {
        name: "fuzz",
        audience: "test",
        about: "fuzz the built-in tools' parsers for the given seconds per target",
        command: &["bash", "scripts/test/fuzz.sh"],
    },
    Task {
        name: "coverage",
        audience: "test",
        about: "line coverage of src/ from instrumented runs (needs cargo-llvm-cov)",
        command: &["bash", "scripts/test/coverage.sh"],
    },
    Task {
        name: "validate-deploy",
        audience: "test, operators",
        about: "lint the Dockerfile, the Kubernetes manifests and the Helm chart",
        command: &["bash", "scripts/test/validate-deploy.sh"],
    },
    Task {
        name: "backup",
        audience: "operators",
        about: "back up the database (see DEPLOYMENT.md)",
        command: &["bash", "deploy/scripts/backup.sh"],
    },
    Task {
        name: "restore",
        audience: "operators",
        about: "restore a backup (see DEPLOYMENT.md)",
        command: &["bash", "deploy/scripts/restore.sh"],
    },
    Task {
        name: "bench",
        audience: "developers",
        about: "load benchmark against an in-process server (see docs/performance.md)",
        command: &["cargo", "run", "--release", "--example", "bench", "--"],
    },
    Task {
        name: "eval",
        audience: "developers",
        about: "retrieval quality on the labelled query sets (see docs/search.md)",
        command: &[
            "cargo",
            "run",
            "--release",
            "--example",
            "eval_retrieval",
            "--",
        ],
    },
    Task {
        name: "register-tools",
        audience: "everyone",
        about: "register 172 tools of 21 real MCP servers with a running server",
        command: &["cargo", "run", "--example", "register_tools", "--"],
    },
    Task {
        name: "search-tools",
        audience: "everyone",
        about: "rank tools for a query in each mode against a running server",
        command: &["cargo", "run", "--example", "search_tools", "--"],
    },
    Task {
        name: "api-examples",
        audience: "everyone",
        about: "every route with curl against a running server (BASE_URL)",
        command: &["bash", "examples/mcp_api_examples.sh"],
    },
    Task {
        name: "ci",
        audience: "CI",
        about: "install what a fresh machine lacks, then run the test command",
        command: &["bash", ".ci/run"],
    },
];

fn main() -> ExitCode {
    let mut args = env::args().skip(1);
    let Some(name) = args
        .next()
        .filter(|name| name != "help" && name != "--help")
    else {
        print_tasks();
        return ExitCode::SUCCESS;
    };
    let Some(task) = TASKS.iter().find(|task| task.name == name) else {
        eprintln!("unknown task '{name}'\n");
        print_tasks();
        return ExitCode::FAILURE;
    };
    let (program, fixed) = task.command.split_first().expect("a task has a command");
    let status = Command::new(program)
        .args(fixed)
        .args(args)
        .current_dir(repository_root())
        .status();
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => ExitCode::from(status.code().map_or(1, |code| code as u8)),
        Err(err) => {
            eprintln!("cannot run {program}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the repository")
        .to_path_buf()
}

fn print_tasks() {
    println!("cargo xtask <task> [ARGS…]\n");
    let width = TASKS.iter().map(|task| task.name.len()).max().unwrap_or(0);
    for task in TASKS {
        println!(
            "  {:width$}  {}  [{}]",
            task.name, task.about, task.audience
        );
    }
}
