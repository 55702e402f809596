//! The one bound on Argon2id work in the process.
//!
//! Every Argon2id run (a login, registration, setup, password change or reset, an
//! `X-User-Secret` unlock, key generation and rekey, a transfer password) takes 19 MiB and
//! ~80 ms of a core. Without a bound, a burst of them takes a blocking thread and a block
//! of memory each: 100 parallel logins took the server past 1 GB. Here they take a slot of
//! one semaphore first (`server.argon2_concurrency`, by default one per core) and run on
//! the blocking pool only while holding it; requests beyond that wait in async land, which
//! costs next to nothing, for at most `server.argon2_queue_timeout_ms`, and are then
//! refused with `503 UNAVAILABLE` and a `Retry-After` estimated from the queue.
//!
//! The pool is process-wide because memory is: [`configure`] (called when the app opens)
//! sets its size, and every server-side caller goes through [`run`] or holds a [`permit`]
//! while its blocking task runs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ServiceError;
use crate::store::StoreError;

/// Default queue timeout when nothing configured the pool (the CLI, unit tests).
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first estimate of one run, before any was measured.
const INITIAL_RUN_NANOS: u64 = 100_000_000;

struct Pool {
    slots: Arc<Semaphore>,
    size: usize,
    queue_timeout: Duration,
    /// Requests waiting for a slot now.
    waiting: AtomicUsize,
    /// A moving average of how long one run holds its slot.
    run_nanos: AtomicU64,
}

impl Pool {
    fn new(size: usize, queue_timeout: Duration) -> Self {
        let size = size.max(1);
        Self {
            slots: Arc::new(Semaphore::new(size)),
            size,
            queue_timeout,
            waiting: AtomicUsize::new(0),
            run_nanos: AtomicU64::new(INITIAL_RUN_NANOS),
        }
    }

    /// How long until the queue ahead of a new request has drained, at least 1 s.
    fn retry_after(&self) -> Duration {
        let queued = self.waiting.load(Ordering::Relaxed) as u64 + 1;
        let per_run = self.run_nanos.load(Ordering::Relaxed);
        Duration::from_nanos(queued.saturating_mul(per_run) / self.size as u64)
            .max(Duration::from_secs(1))
    }

    fn record_run(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let before = self.run_nanos.load(Ordering::Relaxed);
        // An exponential moving average over about eight runs; races only blur it.
        let after = before - before / 8 + took / 8;
        self.run_nanos.store(after, Ordering::Relaxed);
    }
}

static POOL: RwLock<Option<Arc<Pool>>> = RwLock::new(None);

/// Sizes the process's pool: `slots` runs at once, requests waiting at most
/// `queue_timeout`. Runs holding a slot of an earlier configuration finish on it.
pub fn configure(slots: usize, queue_timeout: Duration) {
    let pool = Arc::new(Pool::new(slots, queue_timeout));
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(pool);
}

fn pool() -> Arc<Pool> {
    if let Some(pool) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return pool.clone();
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    slot.get_or_insert_with(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Arc::new(Pool::new(cores, DEFAULT_QUEUE_TIMEOUT))
    })
    .clone()
}

/// A slot of the pool: Argon2id may run while it is held.
pub struct Argon2Permit {
    pool: Arc<Pool>,
    _slot: OwnedSemaphorePermit,
    since: Instant,
}

impl Drop for Argon2Permit {
    fn drop(&mut self) {
        self.pool.record_run(self.since.elapsed());
    }
}

/// Waits for a slot, at most the queue timeout; then `503` with `Retry-After`.
pub async fn permit() -> Result<Argon2Permit, ServiceError> {
    let pool = pool();
    pool.waiting.fetch_add(1, Ordering::Relaxed);
    let acquired =
        tokio::time::timeout(pool.queue_timeout, pool.slots.clone().acquire_owned()).await;
    pool.waiting.fetch_sub(1, Ordering::Relaxed);
    match acquired {
        Ok(Ok(slot)) => Ok(Argon2Permit {
            pool,
            _slot: slot,
            since: Instant::now(),
        }),
        Ok(Err(_closed)) => Err(ServiceError::Store(StoreError::Task(
            "the Argon2id pool is closed".to_owned(),
        ))),
        Err(_elapsed) => {
            tracing::warn!(
                slots = pool.size,
                "Argon2id work is queued past server.argon2_queue_timeout_ms; refusing with 503"
            );
            Err(ServiceError::Overloaded {
                what: "the server is busy checking passwords and secrets; retry after the delay",
                retry_after: pool.retry_after(),
            })
        }
    }
}

/// Runs `work` (which may run Argon2id) on the blocking pool while holding a slot.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    run_with(permit().await?, work).await
}

/// Runs `work` on the blocking pool with a slot taken earlier. The slot moves into the
/// blocking task: it stays taken until the work ends even if the request is dropped.
pub async fn run_with<T: Send + 'static>(
    permit: Argon2Permit,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(move || {
        let out = work();
        drop(permit);
        out
    })
    .await
    .map_err(|e| ServiceError::Store(StoreError::Task(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_refuses_after_the_timeout_with_a_retry_after() {
        let pool = Arc::new(Pool::new(1, Duration::from_millis(20)));
        let held = pool.slots.clone().acquire_owned().await.unwrap();
        let waited =
            tokio::time::timeout(pool.queue_timeout, pool.slots.clone().acquire_owned()).await;
        assert!(waited.is_err(), "the only slot is taken");
        assert!(pool.retry_after() >= Duration::from_secs(1));
        drop(held);
        assert!(pool.slots.clone().try_acquire_owned().is_ok());
    }

    #[test]
    fn the_estimate_follows_measured_runs() {
        let pool = Pool::new(2, DEFAULT_QUEUE_TIMEOUT);
        for _ in 0..64 {
            pool.record_run(Duration::from_secs(4));
        }
        pool.waiting.store(3, Ordering::Relaxed);
        // 4 requests (3 waiting and this one) of ~4 s on 2 slots: ~8 s.
        let wait = pool.retry_after().as_secs_f64();
        assert!((7.0..=8.5).contains(&wait), "{wait}");
    }
}
