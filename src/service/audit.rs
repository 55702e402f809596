//! Reading and verifying the audit log (SPEC §8): filtered, paginated listings of an
//! organization's entries, verification of its hash chain, and retention pruning. Entries
//! are written by every other service through `Journal` and `store::audit::append`.

use rusqlite::Connection;

use super::page::{Cursor, Page, PageRequest};
use super::{FieldError, ServiceError, access, invalid_if_any, read, write};
use crate::auth::{Permission, Principal};
use crate::ids::{OrgId, format_rfc3339};
use crate::store::audit::{self, ChainState, StoredEntry};
use crate::store::{Store, StoreError};

/// The filters of `GET /v1/audit`, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// What verifying one chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// The organization whose chain this is; `None` for the instance chain.
    pub org_id: Option<String>,
    /// Entries checked (those retention pruned are gone and not counted).
    pub entries: u64,
    /// The hash verification started from (all zeros unless entries were pruned).
    pub anchor_hash: String,
    /// The newest entry's hash as recorded in the chain's head.
    pub head_hash: String,
    /// The first thing wrong, if anything is.
    pub problem: Option<ChainProblem>,
}

impl ChainReport {
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }
}

/// Where and how a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    /// The entry at which the chain stops verifying, when there is one.
    pub entry_id: Option<String>,
    pub reason: String,
}

#[derive(Clone)]
pub struct AuditService {
    store: Store,
}

impl AuditService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A page of the organization's entries matching `query`, newest first. `org` is the
    /// organization named in the request, else the caller's requested or default one.
    pub async fn list(
        &self,
        principal: &Principal,
        org: Option<OrgId>,
        query: AuditQuery,
        page: PageRequest,
    ) -> Result<Page<StoredEntry>, ServiceError> {
        let filter = filter_of(query)?;
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = match org {
                Some(org) => access::in_org(conn, &principal, org)?,
                None => access::in_requested_org(conn, &principal)?,
            };
            access.require(Permission::AuditRead)?;
            let org = access.org_id.to_string();
            let cursor = match &page.cursor {
                Cursor::Start => audit::Cursor::Start,
                Cursor::Before(id) | Cursor::After(id) => {
                    let seq =
                        audit::seq_of(conn, &org, id)?.ok_or_else(|| page.unknown_cursor())?;
                    match page.cursor {
                        Cursor::After(_) => audit::Cursor::After(seq),
                        _ => audit::Cursor::Before(seq),
                    }
                }
            };
            let entries = audit::list_for_org(conn, &org, &filter, cursor, page.limit + 1)?;
            Ok(page.finish(entries, |entry| entry.id.clone()))
        })
        .await
    }

    /// Verifies the hash chain of the caller's organization.
    pub async fn verify(&self, principal: &Principal) -> Result<ChainReport, ServiceError> {
        let principal = principal.clone();
        read(&self.store, move |conn| {
            let access = access::in_requested_org(conn, &principal)?;
            access.require(Permission::AuditRead)?;
            let chain = access.org_id.to_string();
            let state = audit::chain_state(conn, &chain)?;
            Ok(verify_chain(conn, &chain, state)?)
        })
        .await
    }

    /// Removes entries older than `retention` from every chain, keeping what remains
    /// verifiable. Returns how many were removed.
    pub async fn prune(&self, retention: std::time::Duration) -> Result<usize, ServiceError> {
        let cutoff = format_rfc3339(time::OffsetDateTime::now_utc() - retention);
        write(&self.store, move |tx| Ok(audit::prune_before(tx, &cutoff)?)).await
    }
}

/// Verifies every chain in the database, and that no entry lies outside a known chain.
/// For `sealbox audit verify`, on a read-only connection.
pub fn verify_all(conn: &Connection) -> Result<Vec<ChainReport>, StoreError> {
    let mut reports = Vec::new();
    for state in audit::chains(conn)? {
        let chain = state.chain.clone();
        reports.push(verify_chain(conn, &chain, Some(state))?);
    }
    for org in audit::orgs_without_chain(conn)? {
        reports.push(ChainReport {
            org_id: org.clone(),
            entries: 0,
            anchor_hash: audit::hex(&audit::GENESIS_HASH),
            head_hash: String::new(),
            problem: Some(ChainProblem {
                entry_id: None,
                reason: "entries exist for a chain that has no recorded head".to_owned(),
            }),
        });
    }
    Ok(reports)
}

/// Walks one chain from its anchor to its head, recomputing every hash.
fn verify_chain(
    conn: &Connection,
    chain: &str,
    state: Option<ChainState>,
) -> Result<ChainReport, StoreError> {
    let genesis = audit::hex(&audit::GENESIS_HASH);
    let (anchor_seq, anchor_hash, head_seq, head_hash) = match state {
        Some(s) => (s.anchor_seq, s.anchor_hash, s.head_seq, s.head_hash),
        None => (0, genesis.clone(), 0, genesis.clone()),
    };
    let mut report = ChainReport {
        org_id: (!chain.is_empty()).then(|| chain.to_owned()),
        entries: 0,
        anchor_hash: anchor_hash.clone(),
        head_hash: head_hash.clone(),
        problem: None,
    };
    let mut expected_prev = anchor_hash;
    let mut last_seq = anchor_seq;
    let mut problem = None;
    audit::walk_chain(conn, chain, |entry| {
        let broken = |reason: &str| {
            Some(ChainProblem {
                entry_id: Some(entry.id.clone()),
                reason: reason.to_owned(),
            })
        };
        problem = if entry.seq <= anchor_seq {
            broken("the entry precedes the chain's pruning anchor")
        } else if entry.prev_hash != expected_prev {
            broken(
                "the entry does not follow the one before it: an entry was deleted, \
                 inserted or moved",
            )
        } else if !recomputes(&entry) {
            broken("the entry's contents do not match its hash: it was edited")
        } else {
            None
        };
        if problem.is_some() {
            return false;
        }
        report.entries += 1;
        last_seq = entry.seq;
        expected_prev = entry.hash;
        true
    })?;
    report.problem = problem.or_else(|| {
        (last_seq != head_seq || expected_prev != head_hash).then(|| ChainProblem {
            entry_id: None,
            reason: "the log ends before the chain's recorded head: the newest entries were \
                     deleted"
                .to_owned(),
        })
    });
    Ok(report)
}

fn recomputes(entry: &StoredEntry) -> bool {
    audit::decode_hash(&entry.prev_hash)
        .map(|prev| audit::hex(&audit::entry_hash(&prev, &entry.canonical_bytes())))
        .is_some_and(|hash| hash == entry.hash)
}

/// Checks the filters and puts the time bounds in the stored timestamp format.
fn filter_of(query: AuditQuery) -> Result<audit::Filter, ServiceError> {
    let mut problems = Vec::new();
    let mut instant = |path: &str, value: Option<String>| {
        let value = value?;
        match time::OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339) {
            Ok(at) => Some(format_rfc3339(at)),
            Err(_) => {
                problems.push(FieldError::new(
                    path,
                    "must be an RFC 3339 timestamp such as 2026-11-24T10:00:00Z",
                ));
                None
            }
        }
    };
    let since = instant("since", query.since);
    let until = instant("until", query.until);
    invalid_if_any(problems)?;
    let nonempty = |value: Option<String>| value.filter(|v| !v.is_empty());
    Ok(audit::Filter {
        action: nonempty(query.action),
        actor_user_id: nonempty(query.actor),
        target_id: nonempty(query.target),
        since,
        until,
    })
}
