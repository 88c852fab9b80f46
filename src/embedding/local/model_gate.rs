//! Lets one model run at a time, queries first.
//!
//! A forward pass already uses every thread it is given, so runs are serialised. Waiting
//! queries (a `find_tool` waiting for its vector) enter before waiting document batches (a
//! bulk registration or a re-index): a query waits for at most the batch that is running, not
//! for every batch queued ahead of it. Within one priority the order is arrival order, so two
//! bulk callers take turns batch by batch.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Who waits for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Someone is waiting for the answer now.
    Query,
    /// Texts of stored tools: throughput matters, a few hundred milliseconds do not.
    Document,
}

#[derive(Debug, Default)]
pub struct ModelGate {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    taken: bool,
    queries: VecDeque<oneshot::Sender<Pass>>,
    documents: VecDeque<oneshot::Sender<Pass>>,
}

/// The right to run the model. Owned, so it can move onto the blocking thread that runs the
/// batch: a batch still running after its caller gave up keeps the next one waiting. Dropping
/// it hands the model to the next waiter.
#[derive(Debug)]
pub struct Pass {
    gate: Option<Arc<ModelGate>>,
}

impl ModelGate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Waits for the model. Cancel-safe: a caller that stops waiting is skipped, and a pass
    /// handed to it in the meantime moves on to the next waiter.
    pub async fn enter(self: &Arc<Self>, priority: Priority) -> Pass {
        let waiting = {
            let mut state = self.lock();
            if !state.taken {
                state.taken = true;
                return self.pass();
            }
            let (sender, receiver) = oneshot::channel();
            match priority {
                Priority::Query => state.queries.push_back(sender),
                Priority::Document => state.documents.push_back(sender),
            }
            receiver
        };
        match waiting.await {
            Ok(pass) => pass,
            // The gate drops a waiter's sender only with the gate itself, which `self` keeps.
            Err(_) => unreachable!("the gate outlives its waiters"),
        }
    }

    /// Queries, then documents, still waiting.
    pub fn waiting(&self) -> (usize, usize) {
        let state = self.lock();
        (state.queries.len(), state.documents.len())
    }

    fn pass(self: &Arc<Self>) -> Pass {
        Pass {
            gate: Some(Arc::clone(self)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a flag and two queues, consistent after every statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives the model to the next waiter still listening, else marks it free.
    fn hand_over(self: &Arc<Self>) {
        loop {
            let next = {
                let mut state = self.lock();
                match state
                    .queries
                    .pop_front()
                    .or_else(|| state.documents.pop_front())
                {
                    Some(next) => next,
                    None => {
                        state.taken = false;
                        return;
                    }
                }
            };
            // Sent outside the lock: a pass that cannot be delivered is disarmed and the next
            // waiter tried, rather than dropped here and handed over recursively.
            match next.send(self.pass()) {
                Ok(()) => return,
                Err(mut undelivered) => {
                    undelivered.gate = None;
                }
            }
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.hand_over();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Polls until the gate has `queries` and `documents` waiters queued.
    async fn until_waiting(gate: &ModelGate, queries: usize, documents: usize) {
        for _ in 0..1000 {
            if gate.waiting() == (queries, documents) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!(
            "expected {queries} queries and {documents} documents waiting, found {:?}",
            gate.waiting()
        );
    }

    #[tokio::test]
    async fn a_waiting_query_goes_before_waiting_documents() {
        let gate = ModelGate::new();
        let running = gate.enter(Priority::Document).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (name, priority) in [
            ("document 1", Priority::Document),
            ("document 2", Priority::Document),
            ("query 1", Priority::Query),
            ("query 2", Priority::Query),
        ] {
            let waiter_gate = Arc::clone(&gate);
            let order = Arc::clone(&order);
            waiters.push(tokio::spawn(async move {
                let _pass = waiter_gate.enter(priority).await;
                order.lock().unwrap().push(name);
            }));
            // Queued one after the other, so arrival order is known.
            let queued = waiters.len();
            let queries = usize::from(queued >= 3) + usize::from(queued >= 4);
            until_waiting(&gate, queries, queued.min(2)).await;
        }
        drop(running);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            ["query 1", "query 2", "document 1", "document 2"]
        );
        assert_eq!(gate.waiting(), (0, 0));
        // Free again: the next caller enters at once.
        drop(gate.enter(Priority::Document).await);
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_is_skipped() {
        let gate = ModelGate::new();
        let running = gate.enter(Priority::Document).await;
        let gone = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.enter(Priority::Query).await })
        };
        until_waiting(&gate, 1, 0).await;
        let next = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.enter(Priority::Document).await })
        };
        until_waiting(&gate, 1, 1).await;
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        drop(running);
        let pass = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the model went to the caller still waiting")
            .unwrap();
        drop(pass);
        drop(gate.enter(Priority::Query).await);
    }

    #[tokio::test]
    async fn a_pass_delivered_but_never_taken_moves_on() {
        let gate = ModelGate::new();
        let running = gate.enter(Priority::Document).await;
        // A waiter whose future is polled once (queued) and then dropped without being
        // polled again: the pass handed to it sits in the channel until the drop.
        let mut abandoned = Box::pin(gate.enter(Priority::Query));
        assert!(futures_util::poll!(abandoned.as_mut()).is_pending());
        let next = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.enter(Priority::Document).await })
        };
        until_waiting(&gate, 1, 1).await;
        drop(running); // delivered to the abandoned query
        assert_eq!(gate.waiting(), (0, 1));
        drop(abandoned); // its undelivered pass goes on to the document
        let pass = tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the model went on to the next waiter")
            .unwrap();
        drop(pass);
    }
}
