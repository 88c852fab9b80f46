//! A small circuit breaker for calls to a remote embedder.
//!
//! * **Closed**: calls go through. `failure_threshold` consecutive failures open it.
//! * **Open**: calls fail fast without touching the network. After `cooldown` the next call
//!   moves it to half-open.
//! * **HalfOpen**: exactly one trial call is let through; the others fail fast. A success closes
//!   the breaker, a failure opens it again for another `cooldown`.
//!
//! Callers take a [`Permit`] with [`CircuitBreaker::try_acquire`] and report the outcome on it
//! (`success`, `failure`, or `neutral` for answers that say nothing about the endpoint's health,
//! such as a rejected request). A permit dropped without an outcome counts as neutral, so a
//! cancelled trial call does not leave the breaker stuck half-open.
//!
//! Outcomes are tagged with a generation that changes on every state transition, so a slow call
//! that started before the breaker opened cannot close or re-open it afterwards.
//!
//! A `failure_threshold` of 0 disables the breaker: it stays closed.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The breaker's state as a gauge: 0 closed, 1 half open, 2 open.
fn publish(state: BreakerState) {
    let level = match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    metrics::gauge!("embedding_breaker_state").set(level);
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point-in-time view of the breaker, for `/health` and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    pub failure_threshold: u32,
    pub cooldown_ms: u64,
    /// Wall-clock time the breaker last opened (milliseconds since the Unix epoch), while it is
    /// open or half-open.
    pub opened_at_unix_ms: Option<u64>,
    /// While open: seconds left before the next call is let through as a trial (0 once due).
    pub seconds_until_half_open: Option<f64>,
    /// How many times the breaker has opened since start.
    pub times_opened: u64,
}

/// The breaker refused the call: it is open, or half-open with its trial call in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOpen;

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circuit open")
    }
}

impl std::error::Error for BreakerOpen {}

/// Source of monotonic time; replaceable in tests.
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    opened_at_wall: Option<SystemTime>,
    /// True while the half-open trial call is out.
    trial_in_flight: bool,
    generation: u64,
    times_opened: u64,
}

/// Thread-safe circuit breaker. Cheap to share behind an `Arc`.
pub struct CircuitBreaker {
    failure_threshold: u32,
    cooldown: Duration,
    clock: Clock,
    inner: Mutex<Inner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("failure_threshold", &self.failure_threshold)
            .field("cooldown", &self.cooldown)
            .field("state", &self.lock().state)
            .finish()
    }
}

impl CircuitBreaker {
    /// A breaker that opens after `failure_threshold` consecutive failures (0 disables it) and
    /// lets a trial call through `cooldown` after opening.
    pub fn new(failure_threshold: u32, cooldown: Duration) -> Self {
        Self::with_clock(failure_threshold, cooldown, Arc::new(Instant::now))
    }

    fn with_clock(failure_threshold: u32, cooldown: Duration, clock: Clock) -> Self {
        Self {
            failure_threshold,
            cooldown,
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                opened_at: None,
                opened_at_wall: None,
                trial_in_flight: false,
                generation: 0,
                times_opened: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The critical sections cannot panic half-way, so a poisoned lock still holds a
        // consistent state.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks to make a call. `Err(BreakerOpen)` means fail fast without calling.
    pub fn try_acquire(&self) -> Result<Permit<'_>, BreakerOpen> {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Closed => {}
            BreakerState::Open => {
                let due = inner
                    .opened_at
                    .is_none_or(|at| (self.clock)().saturating_duration_since(at) >= self.cooldown);
                if !due {
                    return Err(BreakerOpen);
                }
                inner.state = BreakerState::HalfOpen;
                publish(BreakerState::HalfOpen);
                inner.generation += 1;
                inner.trial_in_flight = true;
                tracing::info!(
                    "embedding circuit breaker half-open: letting one trial call through"
                );
            }
            BreakerState::HalfOpen => {
                if inner.trial_in_flight {
                    return Err(BreakerOpen);
                }
                inner.trial_in_flight = true;
            }
        }
        Ok(Permit {
            breaker: self,
            generation: inner.generation,
            done: false,
        })
    }

    /// The current state, consecutive failures and timing, for health reports.
    pub fn state(&self) -> BreakerSnapshot {
        let inner = self.lock();
        let seconds_until_half_open = match (inner.state, inner.opened_at) {
            (BreakerState::Open, Some(at)) => {
                let elapsed = (self.clock)().saturating_duration_since(at);
                Some(self.cooldown.saturating_sub(elapsed).as_secs_f64())
            }
            _ => None,
        };
        BreakerSnapshot {
            state: inner.state,
            consecutive_failures: inner.consecutive_failures,
            failure_threshold: self.failure_threshold,
            cooldown_ms: u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX),
            opened_at_unix_ms: inner.opened_at_wall.and_then(|t| {
                t.duration_since(UNIX_EPOCH)
                    .ok()
                    .and_then(|d| u64::try_from(d.as_millis()).ok())
            }),
            seconds_until_half_open,
            times_opened: inner.times_opened,
        }
    }

    fn on_success(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        match inner.state {
            BreakerState::Closed => inner.consecutive_failures = 0,
            BreakerState::HalfOpen => {
                tracing::info!("embedding circuit breaker closed: trial call succeeded");
                inner.state = BreakerState::Closed;
                publish(BreakerState::Closed);
                inner.consecutive_failures = 0;
                inner.opened_at = None;
                inner.opened_at_wall = None;
                inner.trial_in_flight = false;
                inner.generation += 1;
            }
            // Permits are never handed out in this state's generation.
            BreakerState::Open => {}
        }
    }

    fn on_failure(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        match inner.state {
            BreakerState::Closed => {
                inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                if self.failure_threshold > 0
                    && inner.consecutive_failures >= self.failure_threshold
                {
                    tracing::warn!(
                        failures = inner.consecutive_failures,
                        cooldown_ms = self.cooldown.as_millis() as u64,
                        "embedding circuit breaker opened"
                    );
                    self.open(&mut inner);
                }
            }
            BreakerState::HalfOpen => {
                inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
                tracing::warn!("embedding circuit breaker re-opened: trial call failed");
                self.open(&mut inner);
            }
            BreakerState::Open => {}
        }
    }

    fn on_neutral(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation && inner.state == BreakerState::HalfOpen {
            // Free the trial slot; the next call becomes the trial.
            inner.trial_in_flight = false;
        }
    }

    fn open(&self, inner: &mut Inner) {
        inner.state = BreakerState::Open;
        publish(BreakerState::Open);
        inner.opened_at = Some((self.clock)());
        inner.opened_at_wall = Some(SystemTime::now());
        inner.trial_in_flight = false;
        inner.generation += 1;
        inner.times_opened += 1;
    }
}

/// Permission to make one call; report its outcome with one of the consuming methods.
#[must_use = "report the call's outcome on the permit"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    done: bool,
}

impl Permit<'_> {
    /// The endpoint answered usefully.
    pub fn success(mut self) {
        self.done = true;
        self.breaker.on_success(self.generation);
    }

    /// The endpoint is failing (unreachable, timed out, 5xx, unusable answer).
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.on_failure(self.generation);
    }

    /// The outcome says nothing about the endpoint's health (e.g. the request was rejected).
    pub fn neutral(mut self) {
        self.done = true;
        self.breaker.on_neutral(self.generation);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.on_neutral(self.generation);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock that only moves when told to.
    #[derive(Clone)]
    struct ManualClock(Arc<Mutex<Instant>>);

    impl ManualClock {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(Instant::now())))
        }
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
        fn breaker(&self, threshold: u32, cooldown: Duration) -> CircuitBreaker {
            let me = self.clone();
            CircuitBreaker::with_clock(threshold, cooldown, Arc::new(move || *me.0.lock().unwrap()))
        }
    }

    const COOLDOWN: Duration = Duration::from_secs(10);

    fn fail(b: &CircuitBreaker) {
        b.try_acquire().expect("call allowed").failure();
    }

    #[test]
    fn starts_closed() {
        let b = CircuitBreaker::new(3, COOLDOWN);
        let s = b.state();
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.opened_at_unix_ms, None);
        assert_eq!(s.seconds_until_half_open, None);
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let clock = ManualClock::new();
        let b = clock.breaker(3, COOLDOWN);
        fail(&b);
        fail(&b);
        assert_eq!(b.state().state, BreakerState::Closed);
        assert_eq!(b.state().consecutive_failures, 2);
        fail(&b);
        let s = b.state();
        assert_eq!(s.state, BreakerState::Open);
        assert_eq!(s.consecutive_failures, 3);
        assert_eq!(s.times_opened, 1);
        assert!(s.opened_at_unix_ms.is_some());
        assert_eq!(s.seconds_until_half_open, Some(10.0));
        assert_eq!(b.try_acquire().err(), Some(BreakerOpen));
    }

    #[test]
    fn success_resets_the_failure_count() {
        let clock = ManualClock::new();
        let b = clock.breaker(3, COOLDOWN);
        fail(&b);
        fail(&b);
        b.try_acquire().unwrap().success();
        assert_eq!(b.state().consecutive_failures, 0);
        fail(&b);
        fail(&b);
        assert_eq!(b.state().state, BreakerState::Closed);
    }

    #[test]
    fn neutral_outcomes_do_not_count() {
        let clock = ManualClock::new();
        let b = clock.breaker(2, COOLDOWN);
        fail(&b);
        b.try_acquire().unwrap().neutral();
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state().consecutive_failures, 1);
        assert_eq!(b.state().state, BreakerState::Closed);
    }

    #[test]
    fn half_opens_after_cooldown_with_a_single_trial_then_closes_on_success() {
        let clock = ManualClock::new();
        let b = clock.breaker(1, COOLDOWN);
        fail(&b);
        clock.advance(Duration::from_secs(4));
        assert_eq!(b.state().seconds_until_half_open, Some(6.0));
        assert!(b.try_acquire().is_err());
        clock.advance(Duration::from_secs(6));
        assert_eq!(b.state().seconds_until_half_open, Some(0.0));

        let trial = b.try_acquire().expect("trial call let through");
        assert_eq!(b.state().state, BreakerState::HalfOpen);
        assert!(b.try_acquire().is_err(), "only one trial at a time");
        trial.success();

        let s = b.state();
        assert_eq!(s.state, BreakerState::Closed);
        assert_eq!(s.consecutive_failures, 0);
        assert_eq!(s.opened_at_unix_ms, None);
        assert!(b.try_acquire().is_ok());
    }

    #[test]
    fn failed_trial_reopens_for_another_cooldown() {
        let clock = ManualClock::new();
        let b = clock.breaker(2, COOLDOWN);
        fail(&b);
        fail(&b);
        clock.advance(COOLDOWN);
        b.try_acquire().unwrap().failure();
        let s = b.state();
        assert_eq!(s.state, BreakerState::Open);
        assert_eq!(s.times_opened, 2);
        assert_eq!(s.consecutive_failures, 3);
        assert_eq!(s.seconds_until_half_open, Some(10.0));
        clock.advance(Duration::from_secs(9));
        assert!(b.try_acquire().is_err());
        clock.advance(Duration::from_secs(1));
        assert!(b.try_acquire().is_ok());
    }

    #[test]
    fn dropped_or_neutral_trial_frees_the_slot() {
        let clock = ManualClock::new();
        let b = clock.breaker(1, COOLDOWN);
        fail(&b);
        clock.advance(COOLDOWN);
        drop(b.try_acquire().unwrap());
        assert_eq!(b.state().state, BreakerState::HalfOpen);
        b.try_acquire().expect("slot freed").neutral();
        b.try_acquire().expect("slot freed again").success();
        assert_eq!(b.state().state, BreakerState::Closed);
    }

    #[test]
    fn late_outcomes_from_before_a_transition_are_ignored() {
        let clock = ManualClock::new();
        let b = clock.breaker(1, COOLDOWN);
        let slow = b.try_acquire().unwrap();
        fail(&b);
        assert_eq!(b.state().state, BreakerState::Open);
        // A call that started while closed finishes after the breaker opened.
        slow.success();
        assert_eq!(b.state().state, BreakerState::Open);

        clock.advance(COOLDOWN);
        let trial = b.try_acquire().unwrap();
        // A call from the open generation cannot take the trial's place.
        assert!(b.try_acquire().is_err());
        trial.success();
        assert_eq!(b.state().state, BreakerState::Closed);
    }

    #[test]
    fn zero_threshold_never_opens() {
        let b = CircuitBreaker::new(0, COOLDOWN);
        for _ in 0..100 {
            fail(&b);
        }
        assert_eq!(b.state().state, BreakerState::Closed);
        assert_eq!(b.state().consecutive_failures, 100);
    }

    #[test]
    fn real_clock_with_tiny_cooldown() {
        let b = CircuitBreaker::new(1, Duration::from_millis(20));
        fail(&b);
        assert!(b.try_acquire().is_err());
        std::thread::sleep(Duration::from_millis(30));
        b.try_acquire().unwrap().success();
        assert_eq!(b.state().state, BreakerState::Closed);
    }

    #[test]
    fn snapshot_serializes_snake_case() {
        let b = CircuitBreaker::new(1, COOLDOWN);
        let v = serde_json::to_value(b.state()).unwrap();
        assert_eq!(v["state"], "closed");
        fail(&b);
        let v = serde_json::to_value(b.state()).unwrap();
        assert_eq!(v["state"], "open");
        assert_eq!(BreakerState::HalfOpen.to_string(), "half_open");
    }
}
