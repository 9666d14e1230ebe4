//! The time callbacks are judged against (PENDING or DUE, and when
//! `callbackDue` fires): the system's, or in tests one they set and move,
//! so a callback can come due without anyone waiting real minutes.

use std::sync::Arc;
use tokio::sync::watch;

/// Where "now" comes from.
#[derive(Clone, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// A clock that shows what it was set to (epoch ms) until moved.
    Manual(Arc<watch::Sender<i64>>),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::System => f.write_str("System"),
            Clock::Manual(at) => write!(f, "Manual({})", *at.borrow()),
        }
    }
}

impl Clock {
    /// A manual clock showing `at_ms`.
    pub fn manual(at_ms: i64) -> Clock {
        Clock::Manual(Arc::new(watch::Sender::new(at_ms)))
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => crate::store::now_ms(),
            Clock::Manual(at) => *at.borrow(),
        }
    }

    /// Set a manual clock (waking whoever sleeps on it); the system's
    /// clock is not ours to set, so this does nothing there.
    pub fn set_ms(&self, at_ms: i64) {
        if let Clock::Manual(at) = self {
            at.send_replace(at_ms);
        }
    }

    /// Return once the clock shows `at_ms` or later.
    pub async fn sleep_until(&self, at_ms: i64) {
        match self {
            Clock::System => loop {
                let wait = at_ms.saturating_sub(crate::store::now_ms());
                if wait <= 0 {
                    return;
                }
                // An hour at most at a time: far moments (even "never",
                // i64::MAX) stay within what a timer can hold.
                let wait = wait.min(3_600_000) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            },
            Clock::Manual(at) => {
                let mut watching = at.subscribe();
                // The sender lives as long as this clock, so this only
                // ends when the time comes.
                let _ = watching.wait_for(|now| *now >= at_ms).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_moved_past_their_time() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(5_000).await }
        });
        clock.set_ms(4_999);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke before its time");
        clock.set_ms(5_000);
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper)
            .await
            .expect("woke when the time came")
            .expect("the sleeper ran");
        assert_eq!(clock.now_ms(), 5_000);
    }
}
