//! Teams and departments: named groups of an organization's members. Both kinds follow the
//! same rules, so one service serves both, told apart by [`GroupKind`].

use serde_json::json;

use super::access;
use super::identity::check_name;
use super::{FieldError, Journal, RequestContext, ServiceError, invalid_if_any, read, write};
use crate::auth::{Permission, Principal};
use crate::ids::{GroupId, UserId};
use crate::store::Store;
use crate::store::groups::{self, Group, GroupKind};
use crate::store::{StoreError, organizations};

const MAX_DESCRIPTION_CHARS: usize = 500;
const MAX_MEMBERS: usize = 1000;

/// A group's fields as created or patched; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct GroupInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub member_ids: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct GroupService {
    store: Store,
}

impl GroupService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn list(
        &self,
        principal: &Principal,
        kind: GroupKind,
    ) -> Result<Vec<Group>, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::OrgRead)?;
            Ok(groups::list_for_org(conn, access.org_id, kind)?)
        })
        .await
    }

    pub async fn get(
        &self,
        principal: &Principal,
        kind: GroupKind,
        id: GroupId,
    ) -> Result<Group, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::OrgRead)?;
            groups::find_for_org(conn, access.org_id, kind, id)?.ok_or(not_found(kind))
        })
        .await
    }

    pub async fn create(
        &self,
        principal: &Principal,
        kind: GroupKind,
        input: GroupInput,
        ctx: RequestContext,
    ) -> Result<Group, ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TeamsWrite)?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            let mut group = Group {
                id: GroupId::new(),
                org_id: access.org_id,
                name: String::new(),
                description: String::new(),
                member_ids: Vec::new(),
                created_at: journal.now().to_owned(),
                updated_at: journal.now().to_owned(),
            };
            apply(tx, &mut group, input)?;
            groups::insert(tx, kind, &group).map_err(|e| name_conflict(kind, e))?;
            journal.audit(
                &format!("{}.created", kind.as_str()),
                kind.as_str(),
                group.id,
                json!({"name": group.name}),
            )?;
            Ok(group)
        })
        .await
    }

    pub async fn update(
        &self,
        principal: &Principal,
        kind: GroupKind,
        id: GroupId,
        input: GroupInput,
        ctx: RequestContext,
    ) -> Result<Group, ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TeamsWrite)?;
            let mut group =
                groups::find_for_org(tx, access.org_id, kind, id)?.ok_or(not_found(kind))?;
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            apply(tx, &mut group, input)?;
            group.updated_at = journal.now().to_owned();
            groups::update(tx, &group).map_err(|e| name_conflict(kind, e))?;
            journal.audit(
                &format!("{}.updated", kind.as_str()),
                kind.as_str(),
                group.id,
                json!({"name": group.name, "members": group.member_ids.len()}),
            )?;
            Ok(group)
        })
        .await
    }

    pub async fn delete(
        &self,
        principal: &Principal,
        kind: GroupKind,
        id: GroupId,
        ctx: RequestContext,
    ) -> Result<(), ServiceError> {
        let principal = principal.clone();
        write(&self.store, move |tx| {
            let access = access::in_requested_org(tx, &principal)?;
            access.require(Permission::TeamsWrite)?;
            if !groups::delete_for_org(tx, access.org_id, kind, id)? {
                return Err(not_found(kind));
            }
            let journal = Journal::new(tx, &ctx, access.actor(), access.org());
            journal.audit(
                &format!("{}.deleted", kind.as_str()),
                kind.as_str(),
                id,
                json!({}),
            )?;
            Ok(())
        })
        .await
    }
}

/// Validates `input` and applies it to `group`. Members must belong to the organization;
/// anyone else is reported as not found, as their existence is not the caller's business.
fn apply(
    conn: &rusqlite::Connection,
    group: &mut Group,
    input: GroupInput,
) -> Result<(), ServiceError> {
    let mut problems = Vec::new();
    if let Some(name) = input.name {
        check_name(&name, "name", &mut problems);
        group.name = name.trim().to_owned();
    } else if group.name.is_empty() {
        problems.push(FieldError::new("name", "is required"));
    }
    if let Some(description) = input.description {
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            problems.push(FieldError::new(
                "description",
                format!("must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ));
        }
        group.description = description.trim().to_owned();
    }
    if let Some(ids) = input.member_ids {
        if ids.len() > MAX_MEMBERS {
            problems.push(FieldError::new(
                "memberIds",
                format!("at most {MAX_MEMBERS} members"),
            ));
        }
        let mut members = Vec::new();
        for (index, raw) in ids.iter().enumerate() {
            let member = raw.parse::<UserId>().ok().filter(|id| {
                matches!(
                    organizations::find_member(conn, group.org_id, *id),
                    Ok(Some(_))
                )
            });
            match member {
                Some(id) if !members.contains(&id) => members.push(id),
                Some(_) => {}
                None => problems.push(FieldError::new(
                    format!("memberIds[{index}]"),
                    "is not a member of this organization",
                )),
            }
        }
        group.member_ids = members;
    }
    invalid_if_any(problems)
}

fn not_found(kind: GroupKind) -> ServiceError {
    ServiceError::NotFound(kind.as_str())
}

fn name_conflict(kind: GroupKind, err: StoreError) -> ServiceError {
    match err {
        StoreError::Conflict => ServiceError::Conflict(format!(
            "the organization already has a {} with this name",
            kind.as_str()
        )),
        other => other.into(),
    }
}
