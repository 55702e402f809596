//! The conversion queue as the worker drives it (`worker::conversions`): taking queued
//! jobs, running one (open the source with the job's DEK, convert on a blocking thread,
//! store the result), recording how it ended, and recovering jobs a stopped process left
//! running.
//!
//! The queue is rows, so a restart loses nothing: a job left `running` goes back to the
//! queue at start-up, unless it has been taken `max_attempts` times already, in which case
//! it is failed (an input that kills the process is not retried forever). A converter
//! that panics fails its job at once.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use super::{ConversionSettings, ConvertError, Format, Options, dek_aad, event_data};
use crate::crypto::{Dek, MasterKey};
use crate::ids::now_rfc3339;
use crate::service::files::tampered;
use crate::service::{FileService, Journal, RequestContext, ServiceError, read, write};
use crate::store::Store;
use crate::store::conversions::{self, Conversion, Status};

/// The worker's handle on the conversion queue. Cheap to clone.
#[derive(Clone)]
pub struct ConversionQueue {
    store: Store,
    files: FileService,
    master_key: MasterKey,
    settings: ConversionSettings,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for ConversionQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversionQueue").finish_non_exhaustive()
    }
}

impl ConversionQueue {
    pub(super) fn new(
        store: Store,
        files: FileService,
        master_key: MasterKey,
        settings: ConversionSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            files,
            master_key,
            settings,
            wake,
        }
    }

    /// Signalled when jobs are queued.
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn concurrency(&self) -> usize {
        self.settings.concurrency
    }

    /// At start-up: jobs a stopped process left running go back to the queue, or fail
    /// once they have been taken `max_attempts` times. Returns (requeued, failed).
    pub async fn recover(&self) -> Result<(usize, usize), ServiceError> {
        let max_attempts = self.settings.max_attempts;
        write(&self.store, move |tx| {
            let now = now_rfc3339();
            let (mut requeued, mut failed) = (0, 0);
            for job in conversions::interrupted(tx)? {
                if job.attempts >= max_attempts {
                    let error = format!(
                        "the conversion was interrupted {} times (the server stopped while \
                         converting this file); it is not tried again",
                        job.attempts
                    );
                    finish_in(tx, &job, Status::Failed, Some(&error), None)?;
                    failed += 1;
                } else {
                    conversions::requeue(tx, job.id, &now)?;
                    requeued += 1;
                }
            }
            Ok((requeued, failed))
        })
        .await
    }

    /// Whether a job waits (a read).
    pub async fn any_queued(&self) -> Result<bool, ServiceError> {
        read(&self.store, |conn| Ok(conversions::any_queued(conn)?)).await
    }

    /// Takes up to `limit` queued jobs, oldest first.
    pub async fn claim(&self, limit: u32) -> Result<Vec<Conversion>, ServiceError> {
        write(&self.store, move |tx| {
            Ok(conversions::claim_queued(tx, limit, &now_rfc3339())?)
        })
        .await
    }

    /// Runs one claimed job to its end and records it. Never fails: what goes wrong
    /// becomes the job's error (or, when even that cannot be recorded, a log line; the job
    /// then stays running and is recovered at the next start).
    pub async fn run(&self, job: Conversion) {
        let id = job.id;
        let outcome = self.convert(&job).await;
        let recorded = match outcome {
            Ok(result) => self.succeed(&job, result).await,
            Err(why) => self.fail(&job, &why).await,
        };
        if let Err(e) = recorded {
            tracing::error!(conversion = %id, error = %e, "could not record a conversion's end");
        }
    }

    /// Opens, converts and stores; the made file's row is not inserted yet.
    async fn convert(&self, job: &Conversion) -> Result<crate::store::files::File, String> {
        let sealed = job
            .master_sealed_dek
            .as_deref()
            .ok_or("the conversion's key is gone")?;
        let dek = self
            .master_key
            .open(&dek_aad(job.id), sealed)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(&bytes[..]).ok())
            .map(Dek::from_bytes)
            .ok_or("the conversion's key cannot be opened with this server's master key")?;
        let (from, to) = match (
            Format::parse(&job.source_format),
            Format::parse(&job.target_format),
        ) {
            (Some(from), Some(to)) => (from, to),
            _ => return Err("the conversion names a format this server does not have".into()),
        };
        let limits = self.settings.limits;
        let mut problems = Vec::new();
        let value: serde_json::Value =
            serde_json::from_str(&job.options).map_err(|_| "the stored options are damaged")?;
        let options = Options::parse(
            Some(&value),
            from,
            to,
            limits.max_dimension,
            "options",
            &mut problems,
        );
        if let Some(problem) = problems.first() {
            return Err(format!("{}: {}", problem.path, problem.message));
        }
        let (_, name, plain) = self
            .files
            .open_with_dek(job.org_id, job.owner_id, job.source_file_id, &dek)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound(_) => "the source file was deleted".to_owned(),
                other => format!("the source file could not be read: {other}"),
            })?;
        drop(dek);
        let converted = tokio::task::spawn_blocking(move || {
            super::convert(from, to, &options, &plain, &limits)
        })
        .await;
        let output = match converted {
            Ok(Ok(output)) => output,
            Ok(Err(why)) => return Err(describe(&why)),
            Err(e) if e.is_panic() => {
                tracing::error!(conversion = %job.id, "a converter panicked; the conversion fails");
                return Err(
                    "the converter failed on this file (an internal error); it is not tried again"
                        .into(),
                );
            }
            Err(_) => return Err("the conversion was stopped".into()),
        };
        let name = result_name(&name, output.format);
        self.files
            .store_made(
                job.org_id,
                job.owner_id,
                &name,
                output.format.content_type(),
                Zeroizing::new(output.bytes),
            )
            .await
            .map_err(|e| format!("the result could not be stored: {e}"))
    }

    async fn succeed(
        &self,
        job: &Conversion,
        file: crate::store::files::File,
    ) -> Result<(), ServiceError> {
        let files = self.files.clone();
        let (id, made) = (job.id, file.clone());
        let outcome = write(&self.store, move |tx| {
            let Some(job) = conversions::find(tx, id)? else {
                return Ok(Some(false));
            };
            if job.status != Status::Running {
                return Ok(Some(false));
            }
            if let Err(refused) = files.insert_made_in(tx, &made) {
                // Storage quota and plan limits apply to results as to uploads.
                let error = format!("the result could not be stored: {refused}");
                finish_in(tx, &job, Status::Failed, Some(&error), None)?;
                return Ok(None);
            }
            finish_in(tx, &job, Status::Succeeded, None, Some(&made))?;
            Ok(Some(true))
        })
        .await;
        if !matches!(outcome, Ok(Some(true))) {
            // Cancelled meanwhile, refused, or not recorded: the bytes are nobody's.
            self.files.discard_made(&file).await;
        }
        outcome.map(|_| ())
    }

    async fn fail(&self, job: &Conversion, why: &str) -> Result<(), ServiceError> {
        let (id, why) = (job.id, why.to_owned());
        write(&self.store, move |tx| {
            if let Some(job) = conversions::find(tx, id)?
                && job.status == Status::Running
            {
                finish_in(tx, &job, Status::Failed, Some(&why), None)?;
            }
            Ok(())
        })
        .await
    }
}

/// Ends `job` as `to` in the caller's transaction, with its audit entry and
/// `conversion.succeeded` / `conversion.failed` event (the worker is the actor: none).
fn finish_in(
    tx: &rusqlite::Connection,
    job: &Conversion,
    to: Status,
    error: Option<&str>,
    result: Option<&crate::store::files::File>,
) -> Result<(), ServiceError> {
    let now = now_rfc3339();
    if !conversions::finish(
        tx,
        job.id,
        &[Status::Running, Status::Queued],
        to,
        error,
        result.map(|f| f.id),
        &now,
    )? {
        return Ok(());
    }
    let ended = conversions::find(tx, job.id)?.ok_or_else(tampered)?;
    let ctx = RequestContext::default();
    let journal = Journal::new(tx, &ctx, None, Some(job.org_id.to_string()));
    let action = match to {
        Status::Succeeded => "conversion.succeeded",
        _ => "conversion.failed",
    };
    journal.audit(
        action,
        "conversion",
        job.id,
        json!({"resultFileId": ended.result_file_id, "error": ended.error}),
    )?;
    journal.event(action, event_data(&ended))?;
    if let Some(file) = result {
        journal.event(
            "file.uploaded",
            json!({"fileId": file.id, "ownerUserId": file.owner_id, "size": file.size,
                   "contentType": file.content_type}),
        )?;
    }
    Ok(())
}

fn describe(why: &ConvertError) -> String {
    why.to_string()
}

/// The result's name: the source's, with the target's extension in place of its own.
fn result_name(source: &str, to: Format) -> String {
    let stem = match source.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.contains('/') && ext.len() <= 8 => stem,
        _ => source,
    };
    format!("{stem}.{}", to.extension())
}
