//! The conversion loop (docs/conversions.md): runs beside the HTTP server, takes queued
//! jobs up to `conversions.concurrency` at once and runs each in its own task (the
//! converting itself is on a blocking thread). At start it recovers the jobs a stopped
//! process left running; on shutdown it takes no new job and lets the running ones
//! finish, and whatever is cut off is recovered at the next start.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::service::conversions::ConversionQueue;

/// How often the loop looks for queued jobs when nothing wakes it.
const POLL: Duration = Duration::from_millis(250);

pub struct ConversionWorker {
    queue: ConversionQueue,
}

impl ConversionWorker {
    pub fn new(queue: ConversionQueue) -> Self {
        Self { queue }
    }

    /// Runs until `stop` turns true, then waits for the jobs in flight.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        match self.queue.recover().await {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                tracing::info!(
                    requeued,
                    failed,
                    "recovered conversions a stopped server left running"
                )
            }
            Err(e) => tracing::error!(error = %e, "could not recover interrupted conversions"),
        }
        let concurrency = self.queue.concurrency();
        let wake = self.queue.wakeup();
        let mut running = JoinSet::new();
        let mut stopping = *stop.borrow();
        loop {
            while running.try_join_next().is_some() {}
            if stopping {
                while running.join_next().await.is_some() {}
                return;
            }
            let free = concurrency.saturating_sub(running.len());
            if free > 0 && self.queue.any_queued().await.unwrap_or(false) {
                match self.queue.claim(free as u32).await {
                    Ok(jobs) => {
                        for job in jobs {
                            let queue = self.queue.clone();
                            running.spawn(async move { queue.run(job).await });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "could not take queued conversions"),
                }
            }
            tokio::select! {
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                changed = stop.changed() => stopping = changed.is_err() || *stop.borrow(),
            }
        }
    }
}
