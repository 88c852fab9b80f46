//! `EXECUTION_*`: how the record of calls is written.

use std::time::Duration;

use serde::Deserialize;

pub use crate::registry::recorder::ExecutionRecording;
use crate::registry::recorder::RecorderOptions;

#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionSettings {
    /// Execution records waiting to be written; callers wait when it is full.
    #[serde(rename = "execution_queue_size")]
    pub queue_size: usize,
    /// `durable` writes a call's record before answering, `deferred` after.
    #[serde(rename = "execution_recording")]
    pub recording: ExecutionRecording,
    /// How long a write of execution records the database cannot take (it is down) is
    /// retried before those records are given up and counted lost.
    #[serde(rename = "execution_retry_ms")]
    pub retry_ms: u64,
}

impl ExecutionSettings {
    pub fn retry(&self) -> Duration {
        Duration::from_millis(self.retry_ms)
    }

    /// The execution recorder's options.
    pub fn recorder_options(&self) -> RecorderOptions {
        RecorderOptions {
            capacity: self.queue_size,
            mode: self.recording,
            retry_for: self.retry(),
        }
    }
}
