//! Today's API request counts per key and per organization, counted in memory and written
//! to `plan_usage` in batches.
//!
//! Counting every API-key request with its own durable write made quotas the slowest part
//! of a request (one commit and fsync each: 976 vs 4,118 `GET /v1/me` a second, debug
//! build). Here a request takes its unit under a lock, and [`DailyCounts::flush`] writes
//! what was taken since the last flush in one transaction (every second while serving,
//! and at shutdown). The price: a crash loses at most the last second's counts, so a key
//! may make that many requests more than its quota on the day of a crash. docs/billing.md
//! says so.
//!
//! The memory is the truth for an entry it holds: only this process counts API requests
//! (the console never does), so the stored count is the entry's count minus what is not
//! flushed yet. An entry is loaded from the store the first time a subject is counted on a
//! day, and dropped once it is flushed and either of a past day or the map is full; a
//! later request loads it again, from a store that then holds all of it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{API_REQUESTS, Quota};
use crate::service::{ServiceError, read, write};
use crate::store::Store;
use crate::store::plans as store;

/// Subjects held at most before flushed ones are dropped (each is a few dozen bytes).
const MAX_ENTRIES: usize = 100_000;

/// One daily counter: a subject (an API key's or an organization's id) on a UTC day.
type Subject = (String, String);

#[derive(Debug, Clone, Copy, Default)]
struct Count {
    /// The day's count, flushed or not.
    n: u64,
    /// Taken since the last flush.
    unflushed: u64,
}

/// What a request asks to count: a subject and its limit.
#[derive(Debug, Clone)]
pub struct Take {
    pub subject: String,
    pub limit: u64,
    /// Says which quota it is, in the refusal.
    pub what: &'static str,
}

/// Today's API request counts (see the module comment).
#[derive(Debug, Default)]
pub struct DailyCounts {
    entries: Mutex<HashMap<Subject, Count>>,
    /// Held while a flush writes, so two flushes never write the same units twice and
    /// entries are dropped only once their units are stored.
    flushing: tokio::sync::Mutex<()>,
}

/// A quota is spent: which one, and where it stands.
#[derive(Debug, Clone)]
pub struct Spent {
    pub what: &'static str,
    pub limit: u64,
}

impl DailyCounts {
    /// Takes one unit of `day` from every subject of `takes`, or none when one of them has
    /// reached its limit. Returns each subject's remaining units, in the order given.
    pub async fn take(
        &self,
        store: &Store,
        day: &str,
        takes: &[Take],
    ) -> Result<Result<Vec<u64>, Spent>, ServiceError> {
        loop {
            self.load_missing(store, day, takes).await?;
            let mut entries = self.lock();
            let counts: Option<Vec<u64>> = takes
                .iter()
                .map(|t| {
                    entries
                        .get(&(t.subject.clone(), day.to_owned()))
                        .map(|c| c.n)
                })
                .collect();
            // A flush of a full map dropped one between the load and here: load it again.
            let Some(counts) = counts else { continue };
            if let Some((take, _)) = takes.iter().zip(&counts).find(|(t, n)| **n >= t.limit) {
                return Ok(Err(Spent {
                    what: take.what,
                    limit: take.limit,
                }));
            }
            let mut remaining = Vec::with_capacity(takes.len());
            for take in takes {
                let count = entries
                    .get_mut(&(take.subject.clone(), day.to_owned()))
                    .expect("present: checked under the same lock");
                count.n += 1;
                count.unflushed += 1;
                remaining.push(take.limit.saturating_sub(count.n));
            }
            return Ok(Ok(remaining));
        }
    }

    /// The day's count of `subject`, with what is not flushed yet.
    pub fn used(&self, subject: &str, day: &str) -> Option<u64> {
        self.lock()
            .get(&(subject.to_owned(), day.to_owned()))
            .map(|c| c.n)
    }

    /// Reads the stored count of every subject of `takes` not held yet.
    async fn load_missing(
        &self,
        store: &Store,
        day: &str,
        takes: &[Take],
    ) -> Result<(), ServiceError> {
        let missing: Vec<String> = {
            let entries = self.lock();
            takes
                .iter()
                .filter(|t| !entries.contains_key(&(t.subject.clone(), day.to_owned())))
                .map(|t| t.subject.clone())
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let day_owned = day.to_owned();
        let stored = read(store, move |conn| {
            missing
                .into_iter()
                .map(|subject| {
                    let n = store::used(conn, &subject, API_REQUESTS, &day_owned)?;
                    Ok((subject, n))
                })
                .collect::<Result<Vec<_>, ServiceError>>()
        })
        .await?;
        let mut entries = self.lock();
        for (subject, n) in stored {
            // Another request may have loaded it meanwhile and counted on it: keep that.
            entries
                .entry((subject, day.to_owned()))
                .or_insert(Count { n, unflushed: 0 });
        }
        Ok(())
    }

    /// Writes the units taken since the last flush in one transaction, then drops entries
    /// of days before `today` (and, past [`MAX_ENTRIES`], every flushed one). On a failed
    /// write the units stay to be written by the next flush.
    pub async fn flush(&self, store: &Store, today: &str) -> Result<usize, ServiceError> {
        let _one_at_a_time = self.flushing.lock().await;
        let pending: Vec<(Subject, u64)> = {
            let mut entries = self.lock();
            entries
                .iter_mut()
                .filter(|(_, c)| c.unflushed > 0)
                .map(|(subject, c)| (subject.clone(), std::mem::take(&mut c.unflushed)))
                .collect()
        };
        if !pending.is_empty() {
            let rows = pending.clone();
            let written = write(store, move |tx| {
                for ((subject, day), units) in &rows {
                    store::add(tx, subject, API_REQUESTS, day, *units)?;
                }
                Ok(())
            })
            .await;
            if let Err(e) = written {
                let mut entries = self.lock();
                for (subject, units) in pending {
                    entries.entry(subject).or_default().unflushed += units;
                }
                return Err(e);
            }
        }
        let mut entries = self.lock();
        let full = entries.len() > MAX_ENTRIES;
        entries.retain(|(_, day), c| c.unflushed > 0 || (!full && day.as_str() >= today));
        Ok(pending.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Subject, Count>> {
        self.entries
            .lock()
            .expect("the usage counts are never poisoned")
    }
}

/// The standing of the tighter of the quotas taken, for the `X-Quota-*` headers.
pub fn tightest(
    takes: &[Take],
    remaining: &[u64],
    reset: u64,
    retry_after: std::time::Duration,
) -> Option<Quota> {
    takes
        .iter()
        .zip(remaining)
        .map(|(t, r)| Quota {
            limit: t.limit,
            remaining: *r,
            reset,
            retry_after,
        })
        .min_by_key(|q| q.remaining)
}
