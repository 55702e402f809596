//! Files referenced from messages (the reference's "reference the returned file id from
//! a message"). A message names file ids in `attachments`; each must be a
//! client-encrypted file its sender can read (its own, or one attached to a message the
//! sender can see). While the message lives (not deleted, not expired), every
//! participant who can see it may download each file through the files routes
//! (`GET /v1/files/{id}/download`); the bytes are served as stored, ciphertext the server
//! cannot open. Only client-encrypted files qualify: a file sealbox encrypted opens only
//! with its owner's secret (file shares exist for those).
//!
//! One rule, [`readable_file`], decides both who may attach a file and who may download
//! it; [`link_still_good`] re-applies it each time a download link is opened.

use rusqlite::Connection;

use super::limits;
use crate::auth::Permission;
use crate::ids::{FileId, OrgId, UserId, now_rfc3339};
use crate::service::access::Access;
use crate::service::{FieldError, ServiceError};
use crate::store::files::{self, Encryption, File};
use crate::store::messaging::attachments;

/// The file `id` as the caller may read it: its own (in the organization it acts in), or
/// a client-encrypted file attached to a live message the caller can see in one of its
/// chats there (that path also needs `messages:read`). `None` for anything else, another
/// organization's files included. Needs `files:read` (403).
pub(crate) fn readable_file(
    conn: &Connection,
    access: &Access,
    id: FileId,
) -> Result<Option<File>, ServiceError> {
    access.require(Permission::FilesRead)?;
    if let Some(file) = files::find_for_owner(conn, access.org_id, access.user_id, id)? {
        return Ok(Some(file));
    }
    if !access.permissions.contains(Permission::MessagesRead)
        || !attachments::visible_to(conn, access.org_id, access.user_id, id, &now_rfc3339())?
    {
        return Ok(None);
    }
    Ok(files::find_by_id(conn, id)?
        .filter(|f| f.org_id == access.org_id && f.encryption == Encryption::Client))
}

/// Whether a download link issued to `user` for a client-encrypted `file` still stands
/// when it is opened: the owner's always; a chat participant's only while a message the
/// user can see still names the file (a client-encrypted file of someone else is
/// reachable no other way: file shares carry only files sealbox encrypted, whose links
/// `files` checks against the share).
pub(crate) fn link_still_good(
    conn: &Connection,
    org: OrgId,
    user: UserId,
    file: &File,
) -> Result<bool, ServiceError> {
    if user == file.owner_id || file.encryption != Encryption::Client {
        return Ok(true);
    }
    Ok(attachments::visible_to(
        conn,
        org,
        user,
        file.id,
        &now_rfc3339(),
    )?)
}

/// Shape checks of `attachments` (422): at most [`limits::MAX_ATTACHMENTS`] file ids,
/// none listed twice.
pub(crate) fn parse(raw: &[String], problems: &mut Vec<FieldError>) -> Vec<FileId> {
    if raw.len() > limits::MAX_ATTACHMENTS {
        problems.push(FieldError::new(
            "attachments",
            format!("at most {} file ids", limits::MAX_ATTACHMENTS),
        ));
        return Vec::new();
    }
    let mut ids = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        match text.parse::<FileId>() {
            Err(_) => problems.push(FieldError::new(
                format!("attachments[{i}]"),
                "must be a file id",
            )),
            Ok(id) if ids.contains(&id) => problems.push(FieldError::new(
                format!("attachments[{i}]"),
                "is listed twice",
            )),
            Ok(id) => ids.push(id),
        }
    }
    ids
}

/// Resolves the files a message will name: each readable by the sender (else 404, as if
/// it did not exist: naming someone else's file gains nothing) and client-encrypted
/// (else 422).
pub(crate) fn check_attachable(
    conn: &Connection,
    access: &Access,
    ids: &[FileId],
) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let file = readable_file(conn, access, *id)?.ok_or(ServiceError::NotFound("file"))?;
        if file.encryption != Encryption::Client {
            problems.push(FieldError::new(
                format!("attachments[{i}]"),
                "must be a client-encrypted file (presign with \"encryption\": \"client\"): \
                 participants download it as stored, and only its owner can open a file \
                 sealbox encrypted",
            ));
        }
    }
    crate::service::invalid_if_any(problems)
}
