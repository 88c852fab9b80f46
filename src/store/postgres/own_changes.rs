//! Which tools a PostgreSQL replica changed itself while it was reading the database.
//!
//! A replica changes its in-memory copies (catalogue index, vectors) on its own writes, and
//! re-reads a tool from the database when a notification names it. A re-read may run
//! alongside an own write of the same tool and see the row as it was before that write
//! committed; applied after the write, it would undo it until the write's own notification
//! is followed. So a read is not applied to a tool this replica changed since the read began,
//! nor to one it is changing (its transaction not yet settled): the change's own
//! notification follows and re-reads it.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use uuid::Uuid;

#[derive(Default)]
pub struct OwnChanges {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Counts own changes begun and settled.
    generation: u64,
    /// The generation of each tool's latest own change begun or settled, kept while a read
    /// that began before it is in flight.
    changed_at: HashMap<Uuid, u64>,
    /// Own changes begun whose transaction has not settled, by tool.
    unsettled: HashMap<Uuid, usize>,
    /// Reads in flight, by the generation each began at.
    reads: BTreeMap<u64, usize>,
}

/// When a read of the database began.
#[must_use = "a read must end, or its marks are kept for ever"]
pub struct ReadStart(u64);

/// The tools a read must not be applied to.
pub struct ChangedSince<'a> {
    state: &'a State,
    began: u64,
}

impl ChangedSince<'_> {
    pub fn contains(&self, id: &Uuid) -> bool {
        self.state.unsettled.contains_key(id)
            || self
                .state
                .changed_at
                .get(id)
                .is_some_and(|at| *at > self.began)
    }

    pub fn ids(&self) -> impl Iterator<Item = &Uuid> {
        let unsettled_only = self
            .state
            .unsettled
            .keys()
            .filter(|id| !self.state.changed_at.contains_key(id));
        self.state
            .changed_at
            .keys()
            .chain(unsettled_only)
            .filter(|id| self.contains(id))
    }
}

impl OwnChanges {
    /// An own change of `id` begins (before its transaction commits).
    pub fn begin_write(&self, id: Uuid) {
        let mut state = self.lock();
        state.mark(id);
        *state.unsettled.entry(id).or_default() += 1;
    }

    /// An own change of `id` committed or failed, and was applied to the copies.
    pub fn settle(&self, id: Uuid) {
        let mut state = self.lock();
        if let Some(count) = state.unsettled.get_mut(&id) {
            *count -= 1;
            if *count == 0 {
                state.unsettled.remove(&id);
            }
        }
        state.mark(id);
    }

    pub fn begin_read(&self) -> ReadStart {
        let mut state = self.lock();
        let began = state.generation;
        *state.reads.entry(began).or_default() += 1;
        ReadStart(began)
    }

    /// Ends a read: `apply` runs under this lock (so no own change begins or settles
    /// meanwhile) and is told which tools the read must leave as they are.
    pub fn end_read<R>(&self, start: ReadStart, apply: impl FnOnce(&ChangedSince<'_>) -> R) -> R {
        let mut state = self.lock();
        let applied = apply(&ChangedSince {
            state: &state,
            began: start.0,
        });
        if let Some(count) = state.reads.get_mut(&start.0) {
            *count -= 1;
            if *count == 0 {
                state.reads.remove(&start.0);
            }
        }
        // Marks no read in flight can ask about are forgotten.
        let oldest = state
            .reads
            .keys()
            .next()
            .copied()
            .unwrap_or(state.generation);
        state.changed_at.retain(|_, at| *at > oldest);
        applied
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("own changes lock poisoned")
    }
}

impl State {
    fn mark(&mut self, id: Uuid) {
        self.generation += 1;
        self.changed_at.insert(id, self.generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(own: &OwnChanges, start: ReadStart, id: Uuid) -> bool {
        own.end_read(start, |changed| changed.contains(&id))
    }

    #[test]
    fn a_read_skips_tools_changed_since_it_began_or_being_changed() {
        let own = OwnChanges::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(!changed(&own, own.begin_read(), a));

        // Changed and settled after the read began.
        let read = own.begin_read();
        own.begin_write(a);
        own.settle(a);
        assert!(changed(&own, read, a));
        // Settled before the read began.
        assert!(!changed(&own, own.begin_read(), a));

        // Begun before the read, not settled at its end: the read may predate the commit.
        own.begin_write(b);
        let read = own.begin_read();
        assert!(changed(&own, read, b));
        // Begun before, settled during the read.
        let read = own.begin_read();
        own.settle(b);
        assert!(changed(&own, read, b));
        assert!(!changed(&own, own.begin_read(), b));
    }

    #[test]
    fn marks_are_kept_only_while_an_older_read_is_in_flight() {
        let own = OwnChanges::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let long_read = own.begin_read();
        own.begin_write(a);
        own.settle(a);
        // A later read ending first does not forget what the long read must skip.
        let short_read = own.begin_read();
        own.end_read(short_read, |_| ());
        own.begin_write(b);
        own.settle(b);
        let skipped: Vec<Uuid> = own.end_read(long_read, |changed| {
            let mut ids: Vec<Uuid> = changed.ids().copied().collect();
            ids.sort();
            ids
        });
        let mut both = vec![a, b];
        both.sort();
        assert_eq!(skipped, both);
        assert!(own.lock().changed_at.is_empty());
        assert!(own.lock().reads.is_empty());
    }
}
