//! Running a GraphQL execution together with the loads it queues, in the
//! request's own task: a level's loads start once every field of that
//! level has asked, so each level costs one statement per kind of data.

use super::loader::Queue;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;

/// Run `fut` (a GraphQL execution) and, whenever it is waiting, the loads
/// it queued: every field of one level has registered its key by then, so
/// each level costs one statement per kind of data.
///
/// "Waiting" means waiting on something else: a list of more than 30
/// fields is resolved through `FuturesUnordered`, which returns early and
/// wakes itself to be fair to other tasks; such a poll is repeated before
/// the queued loads start, so siblings past the 30th join the batch.
///
/// Past `deadline` it stops making progress and yields, so the caller's
/// time limit (checked only when this is pending) takes effect even when
/// the database answers so fast that the work never waits.
pub async fn drive<T>(
    queue: Queue,
    deadline: std::time::Instant,
    fut: impl Future<Output = T>,
) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut running: FuturesUnordered<BoxFuture<'static, ()>> = FuturesUnordered::new();
    let wake = Arc::new(SelfWake::default());
    std::future::poll_fn(move |cx| {
        wake.set_outer(cx.waker());
        // Wakes that come while this runs are handled by the loop below;
        // passing them on to the task would only poll it again for nothing
        // (and make the scheduler wake another worker to take it).
        wake.polling.store(true, Ordering::SeqCst);
        let waker = futures::task::waker_ref(&wake);
        let mut inner = std::task::Context::from_waker(&waker);
        let mut repolls = 0;
        loop {
            if std::time::Instant::now() >= deadline {
                wake.polling.store(false, Ordering::SeqCst);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            wake.woken.store(false, Ordering::SeqCst);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut inner) {
                wake.polling.store(false, Ordering::SeqCst);
                return Poll::Ready(out);
            }
            if wake.woken.load(Ordering::SeqCst) && repolls < 1024 {
                repolls += 1;
                continue;
            }
            // Past 1024 re-polls, woken is left set: the check before
            // returning below passes it on.
            let queued: Vec<_> =
                std::mem::take(&mut *queue.0.lock().unwrap_or_else(|e| e.into_inner()));
            let added = !queued.is_empty();
            running.extend(queued);
            let mut finished = false;
            while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {
                finished = true;
            }
            if !added && !finished {
                wake.polling.store(false, Ordering::SeqCst);
                // A wake that came after the last check was not passed on.
                if wake.woken.load(Ordering::SeqCst) {
                    if repolls < 1024 {
                        wake.polling.store(true, Ordering::SeqCst);
                        repolls += 1;
                        continue;
                    }
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
        }
    })
    .await
}

/// A waker that remembers being woken, and passes the wake on to the task
/// when it is not being polled.
#[derive(Default)]
struct SelfWake {
    woken: AtomicBool,
    polling: AtomicBool,
    outer: Mutex<Option<std::task::Waker>>,
}

impl SelfWake {
    fn set_outer(&self, waker: &std::task::Waker) {
        let mut outer = self.outer.lock().unwrap_or_else(|e| e.into_inner());
        if !outer.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *outer = Some(waker.clone());
        }
    }
}

impl futures::task::ArcWake for SelfWake {
    fn wake_by_ref(this: &Arc<Self>) {
        this.woken.store(true, Ordering::SeqCst);
        if this.polling.load(Ordering::SeqCst) {
            return;
        }
        if let Some(w) = this
            .outer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            w.wake_by_ref();
        }
    }
}
