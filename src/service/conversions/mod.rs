//! File conversions (docs/conversions.md): `GET /v1/formats`, conversion jobs created
//! for one file or in bulk, read, listed and cancelled by their owner, and the converters.
//!
//! A conversion opens a server-sealed file: the request carries the owner's secret, which
//! unlocks their key pair for the file's DEK; the pair is dropped with the request, and
//! the DEK is kept sealed by the master key in the job's row until the job ends (as an
//! upload keeps its DEK while it runs), so a queued job survives a restart without the
//! secret. The worker ([`queue`], driven by `worker::conversions`) decrypts, converts on
//! a blocking thread within [`Limits`], and stores the result as a new server-sealed file
//! of the same owner, sealed to their public key. End-to-end files cannot be converted:
//! the server never holds their key.
//!
//! Converters, one module per family: [`image`] (PNG, JPEG, WebP, GIF, BMP, TIFF), [`data`]
//! (CSV, JSON, JSON Lines; XLSX and ODS), [`markup`] (Markdown to sanitized HTML),
//! [`text`] (legacy encodings to UTF-8). [`formats`] is the table of what converts to what.

pub mod data;
pub mod formats;
pub mod image;
pub mod markup;
pub mod queue;
pub mod text;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Notify;

pub use formats::{Format, OptionSpec, Options};
pub use queue::ConversionQueue;

use super::files::open_file_dek;
use super::keys::{KeyService, UserSecret, no_key_material};
use super::page::{Cursor, Page, PageRequest};
use super::{FieldError, FileService, Journal, RequestContext, ServiceError, access, read, write};
use crate::auth::{Permission, Principal};
use crate::crypto::MasterKey;
use crate::ids::{ConversionId, FileId, now_rfc3339};
use crate::store::conversions::{self, Conversion, Status};
use crate::store::files::{self as file_rows, Encryption};
use crate::store::{Store, user_keys};

const DEK_AAD: &[u8] = b"sealbox/v1/conversion-dek\0";

/// What a converter may read, decode and write (config `[conversions]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source file, in bytes.
    pub max_input_bytes: u64,
    /// Largest result, in bytes.
    pub max_output_bytes: u64,
    /// Most pixels (width x height) of an image, checked from its header before decoding.
    pub max_pixels: u64,
    /// Longest side of an image, in and out.
    pub max_dimension: u32,
    /// Most memory a decoder may allocate (image decoders), and most bytes a spreadsheet
    /// may unpack to.
    pub max_decode_bytes: u64,
}

/// The queue's settings (config `[conversions]`).
#[derive(Debug, Clone, Copy)]
pub struct ConversionSettings {
    pub limits: Limits,
    /// Jobs converted at once; 0 leaves the queue unworked (jobs wait).
    pub concurrency: usize,
    /// Items of one bulk request.
    pub bulk_max: usize,
    /// Unfinished jobs one member may have at once.
    pub max_unfinished_per_user: i64,
    /// Times a job is taken before an interruption (the process died while converting
    /// it) fails it instead.
    pub max_attempts: i64,
}

impl Default for ConversionSettings {
    fn default() -> Self {
        Self {
            limits: Limits {
                max_input_bytes: 64 * 1024 * 1024,
                max_output_bytes: 256 * 1024 * 1024,
                max_pixels: 40_000_000,
                max_dimension: 16_384,
                max_decode_bytes: 512 * 1024 * 1024,
            },
            concurrency: 2,
            bulk_max: 100,
            max_unfinished_per_user: 1000,
            max_attempts: 2,
        }
    }
}

/// Why a conversion failed, as its `error` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// The input is not what its format says, or cannot be written as the target.
    Invalid(String),
    /// The input (or what it unpacks to) is beyond the limits.
    TooLarge(String),
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::Invalid(why) | ConvertError::TooLarge(why) => f.write_str(why),
        }
    }
}

/// A converter's result.
pub struct Output {
    pub bytes: Vec<u8>,
    pub format: Format,
}

/// Converts `input` from `from` to `to` (a pair [`formats::options_of`] allows) within
/// `limits`. CPU-bound: run it on a blocking thread.
pub fn convert(
    from: Format,
    to: Format,
    options: &Options,
    input: &[u8],
    limits: &Limits,
) -> Result<Output, ConvertError> {
    if input.len() as u64 > limits.max_input_bytes {
        return Err(ConvertError::TooLarge(format!(
            "the file is larger than {} bytes (conversions.max_input_bytes)",
            limits.max_input_bytes
        )));
    }
    if formats::options_of(from, to).is_none() {
        return Err(ConvertError::Invalid(format!(
            "{} cannot be converted to {}",
            from.label(),
            to.label()
        )));
    }
    match (from, to) {
        (f, _) if image::FORMATS.contains(&f) => image::convert(from, to, options, input, limits),
        (Format::Markdown, Format::Html) => markup::markdown_to_html(input, limits),
        (Format::Text, Format::Text) => text::to_utf8(input, options, limits),
        _ => data::convert(from, to, options, input, limits),
    }
}

/// One conversion asked for.
#[derive(Debug, Clone)]
pub struct NewConversion {
    pub file_id: String,
    pub to: String,
    pub from: Option<String>,
    pub options: Option<Value>,
}

/// Conversions as their owners see them.
#[derive(Clone)]
pub struct ConversionService {
    store: Store,
    keys: KeyService,
    master_key: MasterKey,
    settings: ConversionSettings,
    plans: super::plans::PlanRules,
    queue: ConversionQueue,
}

impl std::fmt::Debug for ConversionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConversionService").finish_non_exhaustive()
    }
}

/// A checked item: its file and what it becomes.
struct Checked {
    file_id: FileId,
    from: Format,
    to: Format,
    options: String,
}

impl ConversionService {
    pub fn new(
        store: Store,
        files: FileService,
        keys: KeyService,
        master_key: MasterKey,
        settings: ConversionSettings,
    ) -> Self {
        let queue = ConversionQueue::new(
            store.clone(),
            files,
            master_key.clone(),
            settings,
            Arc::new(Notify::new()),
        );
        Self {
            store,
            keys,
            master_key,
            settings,
            plans: super::plans::PlanRules::default(),
            queue,
        }
    }

    /// Checks conversions against the organization's plan.
    pub fn with_plans(mut self, plans: super::plans::PlanRules) -> Self {
        self.plans = plans;
        self
    }

    pub fn settings(&self) -> &ConversionSettings {
        &self.settings
    }

    /// The worker's handle on the queue.
    pub fn queue(&self) -> ConversionQueue {
        self.queue.clone()
    }

    /// Creates conversion jobs, all or none: one (`bulk` false, problems reported under
    /// the item's own field names) or up to `bulk_max` (`items[n].field`). Needs
    /// `convert:write`; `secret` unlocks the owner's key pair for the files' DEKs.
    pub async fn create(
        &self,
        principal: &Principal,
        secret: Option<&UserSecret>,
        items: Vec<NewConversion>,
        bulk: bool,
        ctx: RequestContext,
    ) -> Result<Vec<Conversion>, ServiceError> {
        if bulk && (items.is_empty() || items.len() > self.settings.bulk_max) {
            return Err(ServiceError::Invalid(vec![FieldError::new(
                "items",
                format!("must hold 1 to {} conversions", self.settings.bulk_max),
            )]));
        }
        let settings = self.settings;
        let lookup = principal.clone();
        let (checked, keys_row, files) = read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &lookup)?;
            access.require(Permission::ConvertWrite)?;
            let unfinished =
                conversions::count_unfinished_for_owner(conn, access.org_id, lookup.user_id)?;
            if unfinished + items.len() as i64 > settings.max_unfinished_per_user {
                return Err(ServiceError::Conflict(format!(
                    "{unfinished} of your conversions are unfinished; at most {} may wait at once",
                    settings.max_unfinished_per_user
                )));
            }
            let mut problems = Vec::new();
            let mut checked = Vec::new();
            let mut files = Vec::new();
            for (n, item) in items.iter().enumerate() {
                let at = |field: &str| {
                    if bulk {
                        format!("items[{n}].{field}")
                    } else {
                        field.to_owned()
                    }
                };
                let file = item
                    .file_id
                    .parse::<FileId>()
                    .ok()
                    .map(|id| file_rows::find_for_owner(conn, access.org_id, lookup.user_id, id))
                    .transpose()?
                    .flatten()
                    .ok_or(ServiceError::NotFound("file"))?;
                if file.encryption == Encryption::Client {
                    problems.push(FieldError::new(
                        at("fileId"),
                        "an end-to-end encrypted file cannot be converted: it was encrypted by \
                         the client and the server never holds its key",
                    ));
                    continue;
                }
                if file.size as u64 > settings.limits.max_input_bytes {
                    problems.push(FieldError::new(
                        at("fileId"),
                        format!(
                            "the file has {} bytes; conversions take at most {} \
                             (conversions.max_input_bytes)",
                            file.size, settings.limits.max_input_bytes
                        ),
                    ));
                    continue;
                }
                let from = match &item.from {
                    Some(key) => match Format::parse(key) {
                        Some(format) => Some(format),
                        None => {
                            problems.push(FieldError::new(
                                at("from"),
                                "not a format this server reads (GET /v1/formats lists them)",
                            ));
                            None
                        }
                    },
                    None => match Format::of_content_type(&file.content_type) {
                        Some(format) => Some(format),
                        None => {
                            problems.push(FieldError::new(
                                at("from"),
                                format!(
                                    "the file's content type `{}` names no format this server \
                                     reads; give its format in `from`",
                                    file.content_type
                                ),
                            ));
                            None
                        }
                    },
                };
                let to = Format::parse(&item.to);
                if to.is_none() {
                    problems.push(FieldError::new(
                        at("to"),
                        "not a format this server writes (GET /v1/formats lists them)",
                    ));
                }
                let (Some(from), Some(to)) = (from, to) else {
                    continue;
                };
                if formats::options_of(from, to).is_none() {
                    problems.push(FieldError::new(
                        at("to"),
                        format!(
                            "{} cannot be converted to {} (GET /v1/formats lists the conversions)",
                            from.label(),
                            to.label()
                        ),
                    ));
                    continue;
                }
                let before = problems.len();
                Options::parse(
                    item.options.as_ref(),
                    from,
                    to,
                    settings.limits.max_dimension,
                    &at("options"),
                    &mut problems,
                );
                if problems.len() == before {
                    checked.push(Checked {
                        file_id: file.id,
                        from,
                        to,
                        options: item
                            .options
                            .clone()
                            .unwrap_or_else(|| json!({}))
                            .to_string(),
                    });
                    files.push(file);
                }
            }
            super::invalid_if_any(problems)?;
            Ok((checked, user_keys::find(conn, lookup.user_id)?, files))
        })
        .await?;
        let secret = secret.ok_or(ServiceError::Unauthorized(
            "the X-User-Secret header is required to convert a file",
        ))?;
        let pair = self
            .keys
            .unlock_row(keys_row.ok_or_else(no_key_material)?, secret)
            .await?;
        let now = now_rfc3339();
        let mut jobs = Vec::with_capacity(checked.len());
        for (item, file) in checked.into_iter().zip(&files) {
            let id = ConversionId::new();
            let dek = open_file_dek(&pair, file)?;
            jobs.push(Conversion {
                id,
                org_id: file.org_id,
                owner_id: file.owner_id,
                source_file_id: item.file_id,
                source_format: item.from.key().to_owned(),
                target_format: item.to.key().to_owned(),
                options: item.options,
                status: Status::Queued,
                progress: 0,
                error: None,
                result_file_id: None,
                master_sealed_dek: Some(self.master_key.seal(&dek_aad(id), dek.expose_bytes())),
                attempts: 0,
                created_at: now.clone(),
                updated_at: now.clone(),
                finished_at: None,
            });
        }
        drop(pair);
        let principal = principal.clone();
        let plans = self.plans.clone();
        let jobs = write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::ConvertWrite)?;
            plans.take_conversions_in(tx, access.org_id, jobs.len() as u64)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            for job in &jobs {
                // Checked again where the job commits: the file may have gone meanwhile.
                if job.org_id != access.org_id
                    || file_rows::find_for_owner(
                        tx,
                        access.org_id,
                        job.owner_id,
                        job.source_file_id,
                    )?
                    .is_none()
                {
                    return Err(ServiceError::NotFound("file"));
                }
                conversions::insert(tx, job)?;
                journal.audit(
                    "conversion.created",
                    "conversion",
                    job.id,
                    json!({"fileId": job.source_file_id, "from": job.source_format,
                           "to": job.target_format}),
                )?;
                journal.event("conversion.created", event_data(job))?;
            }
            Ok(jobs)
        })
        .await?;
        self.queue.wakeup().notify_one();
        Ok(jobs)
    }

    /// One of the caller's conversions. Any valid credential may read its own (no scope).
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<Conversion, ServiceError> {
        let id: ConversionId = id
            .parse()
            .map_err(|_| ServiceError::NotFound("conversion"))?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            conversions::find_for_owner(conn, access.org_id, principal.user_id, id)?
                .ok_or(ServiceError::NotFound("conversion"))
        })
        .await
    }

    /// A page of the caller's conversions, newest first.
    pub async fn list(
        &self,
        principal: &Principal,
        page: PageRequest,
    ) -> Result<Page<Conversion>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            let (org, owner) = (access.org_id, principal.user_id);
            let cursor = match &page.cursor {
                Cursor::Start => conversions::Cursor::Start,
                Cursor::Before(id) | Cursor::After(id) => {
                    let known = id
                        .parse::<ConversionId>()
                        .ok()
                        .map(|id| conversions::find_for_owner(conn, org, owner, id))
                        .transpose()?
                        .flatten()
                        .ok_or_else(|| page.unknown_cursor())?;
                    match page.cursor {
                        Cursor::After(_) => conversions::Cursor::After(known.id),
                        _ => conversions::Cursor::Before(known.id),
                    }
                }
            };
            let items = conversions::list_for_owner(conn, org, owner, cursor, page.limit + 1)?;
            Ok(page.finish(items, |c| c.id.to_string()))
        })
        .await
    }

    /// Cancels one of the caller's unfinished conversions (`convert:write`). A running
    /// one is cancelled too: the worker's result is then discarded. A finished one: 409.
    pub async fn cancel(
        &self,
        principal: &Principal,
        id: &str,
        ctx: RequestContext,
    ) -> Result<Conversion, ServiceError> {
        let id: ConversionId = id
            .parse()
            .map_err(|_| ServiceError::NotFound("conversion"))?;
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            let job = conversions::find_for_owner(tx, access.org_id, principal.user_id, id)?
                .ok_or(ServiceError::NotFound("conversion"))?;
            access.require(Permission::ConvertWrite)?;
            if job.status.finished() {
                return Err(ServiceError::Conflict(format!(
                    "the conversion has already {}",
                    job.status.as_str()
                )));
            }
            let now = now_rfc3339();
            conversions::finish(
                tx,
                id,
                &[Status::Queued, Status::Running],
                Status::Cancelled,
                None,
                None,
                &now,
            )?;
            let job = conversions::find(tx, id)?.ok_or(ServiceError::NotFound("conversion"))?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit("conversion.cancelled", "conversion", id, json!({}))?;
            journal.event("conversion.cancelled", event_data(&job))?;
            Ok(job)
        })
        .await
    }
}

/// The associated data of a job's master-sealed DEK: the job's id.
pub(crate) fn dek_aad(id: ConversionId) -> Vec<u8> {
    [DEK_AAD, id.as_uuid().as_bytes()].concat()
}

/// The `data` of `conversion.*` events.
pub(crate) fn event_data(job: &Conversion) -> Value {
    let mut data = json!({
        "conversionId": job.id,
        "ownerUserId": job.owner_id,
        "fileId": job.source_file_id,
        "from": job.source_format,
        "to": job.target_format,
        "status": job.status.as_str(),
    });
    if let Some(result) = job.result_file_id {
        data["resultFileId"] = json!(result);
    }
    if let Some(error) = &job.error {
        data["error"] = json!(error);
    }
    data
}

/// How long the worker sleeps when nothing wakes it.
pub const POLL: Duration = Duration::from_millis(200);
