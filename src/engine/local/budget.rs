//! A memory budget for image analyses: a counting semaphore over bytes, served in arrival order, so
//! that the analyses running at once never hold more than the budget allows and a big image is not
//! overtaken forever by small ones.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Bytes shared by the analyses that run at once. The standard library has no semaphore; this one
/// is a mutex over two counters and a condition variable, which is all a blocking, FIFO, weighted
/// semaphore needs.
#[derive(Debug)]
pub struct MemoryBudget {
    capacity: u64,
    state: Mutex<State>,
    turn: Condvar,
}

#[derive(Debug)]
struct State {
    /// Bytes not lent out.
    available: u64,
    /// The ticket the next caller takes.
    next_ticket: u64,
    /// The ticket whose turn it is.
    serving: u64,
}

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Share<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `capacity` bytes (at least one).
    pub fn new(capacity: u64) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            state: Mutex::new(State {
                available: capacity,
                next_ticket: 0,
                serving: 0,
            }),
            turn: Condvar::new(),
        }
    }

    /// Blocks until every earlier caller has its share and `bytes` are free, then takes them. A
    /// request over the whole budget waits for all of it.
    pub fn acquire(&self, bytes: u64) -> Share<'_> {
        let bytes = bytes.min(self.capacity);
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        while state.serving != ticket || state.available < bytes {
            state = self
                .turn
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.available -= bytes;
        state.serving += 1;
        drop(state);
        // The next ticket may fit in what is left.
        self.turn.notify_all();
        Share {
            budget: self,
            bytes,
        }
    }

    /// Bytes not lent out now.
    pub fn available(&self) -> u64 {
        self.lock().available
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The counters are changed only in single statements under the lock: a panic elsewhere
        // cannot leave them half-updated, so a poisoned lock is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.budget.lock().available += self.bytes;
        self.budget.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn shares_are_lent_and_given_back() {
        let budget = MemoryBudget::new(100);
        let a = budget.acquire(60);
        let b = budget.acquire(40);
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 60);
        drop(b);
        // More than the whole budget takes all of it, and gives all of it back.
        let all = budget.acquire(1_000);
        assert_eq!(budget.available(), 0);
        drop(all);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn a_waiting_share_is_served_before_later_small_ones() {
        let budget = MemoryBudget::new(100);
        let held = budget.acquire(70);
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let big = tx.clone();
            let budget = &budget;
            s.spawn(move || {
                let _share = budget.acquire(80);
                big.send("big").unwrap();
            });
            // Wait until the big request holds its ticket, so that the small one comes after it.
            while budget.lock().next_ticket < 2 {
                std::thread::yield_now();
            }
            let small = tx.clone();
            s.spawn(move || {
                let _share = budget.acquire(30);
                small.send("small").unwrap();
            });
            while budget.lock().next_ticket < 3 {
                std::thread::yield_now();
            }
            // 30 bytes are free and the small request fits in them, but the big one is first; once
            // the big one is served, the 20 bytes left are too few for the small one.
            assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
            drop(held);
            assert_eq!(rx.recv().unwrap(), "big");
            assert_eq!(rx.recv().unwrap(), "small");
        });
    }
}
