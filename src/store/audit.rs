//! The audit log: append-only and hash-chained with BLAKE3 (SPEC §8).
//!
//! Each organization has its own chain, and entries that belong to no organization (an
//! unknown email failing to sign in, instance administration) form the instance chain.
//! An entry's hash is `BLAKE3-derive_key("sealbox/v1/audit-entry")` over the previous
//! entry's hash and the entry's canonical bytes ([`canonical_bytes`]), so editing,
//! deleting or reordering a row breaks every hash after it. `audit_chains` holds each
//! chain's head (so removing the newest rows is caught too) and its anchor: the hash of
//! the last entry retention pruned, where verification of the remaining chain starts.
//!
//! Triggers refuse updates, and deletes of any row the anchor has not passed: the only way
//! to remove entries is [`prune_before`], which advances the anchor first. Appending reads
//! the head and moves it, so it must run in an IMMEDIATE transaction (`service::write`).

use rusqlite::{Connection, OptionalExtension, params};

use super::CachedQuery as _;

use super::StoreError;

/// The hash that precedes the first entry of a chain.
pub const GENESIS_HASH: [u8; 32] = [0; 32];
const ENTRY_HASH_CONTEXT: &str = "sealbox/v1/audit-entry";
const CANONICAL_VERSION: u8 = 1;

/// One security-relevant action, as a service records it.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry<'a> {
    pub actor_user_id: Option<String>,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    pub org_id: Option<String>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// `success` or `failure`.
    pub outcome: &'a str,
    pub details: serde_json::Value,
}

/// An entry as stored, with its place in its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: i64,
    pub id: String,
    pub at: String,
    pub actor_user_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub org_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    /// The details object exactly as stored (its bytes are hashed).
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl StoredEntry {
    /// The bytes the entry's hash covers: a version byte, then each field in a fixed order
    /// as `0x00` (absent) or `0x01 || u32 big-endian length || UTF-8 bytes`.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(&[
            Some(&self.id),
            Some(&self.at),
            self.actor_user_id.as_deref(),
            Some(&self.action),
            self.target_type.as_deref(),
            self.target_id.as_deref(),
            self.org_id.as_deref(),
            self.ip.as_deref(),
            self.user_agent.as_deref(),
            self.request_id.as_deref(),
            Some(&self.outcome),
            Some(&self.details),
        ])
    }
}

/// See [`StoredEntry::canonical_bytes`].
fn canonical_bytes(fields: &[Option<&str>]) -> Vec<u8> {
    let mut bytes = vec![CANONICAL_VERSION];
    for field in fields {
        match field {
            None => bytes.push(0),
            Some(text) => {
                bytes.push(1);
                let len = u32::try_from(text.len()).expect("audit fields are far below 4 GiB");
                bytes.extend_from_slice(&len.to_be_bytes());
                bytes.extend_from_slice(text.as_bytes());
            }
        }
    }
    bytes
}

/// The hash of an entry whose predecessor's hash is `prev`.
pub fn entry_hash(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(ENTRY_HASH_CONTEXT);
    hasher.update(prev);
    hasher.update(canonical);
    *hasher.finalize().as_bytes()
}

/// The key of the chain an entry belongs to: its organization, or `""` for the instance.
pub fn chain_of(org_id: Option<&str>) -> &str {
    org_id.unwrap_or("")
}

/// Where a chain stands: its newest entry and where pruning left its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub chain: String,
    pub head_seq: i64,
    pub head_hash: String,
    pub anchor_seq: i64,
    pub anchor_hash: String,
}

/// Appends an entry to its organization's chain. Call inside an IMMEDIATE transaction.
pub fn append(conn: &Connection, entry: &AuditEntry<'_>, now: &str) -> Result<(), StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let details = if entry.details.is_null() {
        "{}".to_owned()
    } else {
        entry.details.to_string()
    };
    let chain = chain_of(entry.org_id.as_deref());
    let prev = chain_state(conn, chain)?.map_or(GENESIS_HASH, |state| {
        decode_hash(&state.head_hash).unwrap_or(GENESIS_HASH)
    });
    let canonical = canonical_bytes(&[
        Some(&id),
        Some(now),
        entry.actor_user_id.as_deref(),
        Some(entry.action),
        entry.target_type,
        entry.target_id.as_deref(),
        entry.org_id.as_deref(),
        entry.ip,
        entry.user_agent,
        entry.request_id,
        Some(entry.outcome),
        Some(&details),
    ]);
    let hash = hex(&entry_hash(&prev, &canonical));
    conn.execute(
        "INSERT INTO audit_log (id, at, actor_user_id, action, target_type, target_id, org_id,
                                ip, user_agent, request_id, outcome, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            id,
            now,
            entry.actor_user_id,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.org_id,
            entry.ip,
            entry.user_agent,
            entry.request_id,
            entry.outcome,
            details,
            hex(&prev),
            hash,
        ],
    )?;
    advance_head(conn, chain, conn.last_insert_rowid(), &hash)?;
    Ok(())
}

fn advance_head(conn: &Connection, chain: &str, seq: i64, hash: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit_chains (chain, head_seq, head_hash, anchor_seq, anchor_hash)
         VALUES (?1, ?2, ?3, 0, ?4)
         ON CONFLICT (chain) DO UPDATE SET head_seq = excluded.head_seq,
                                           head_hash = excluded.head_hash",
        params![chain, seq, hash, hex(&GENESIS_HASH)],
    )?;
    Ok(())
}

/// The state of one chain, if it has ever had an entry.
pub fn chain_state(conn: &Connection, chain: &str) -> Result<Option<ChainState>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT chain, head_seq, head_hash, anchor_seq, anchor_hash
             FROM audit_chains WHERE chain = ?1",
            [chain],
            chain_from_row,
        )
        .optional()?)
}

/// Every chain, the instance chain (`""`) first.
pub fn chains(conn: &Connection) -> Result<Vec<ChainState>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT chain, head_seq, head_hash, anchor_seq, anchor_hash
         FROM audit_chains ORDER BY chain",
    )?;
    let rows = stmt.query_map([], chain_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The organizations (`None`: the instance) that have entries but no chain state: rows
/// inserted behind the log's back, or a chain whose state was deleted.
pub fn orgs_without_chain(conn: &Connection) -> Result<Vec<Option<String>>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT org_id FROM audit_log
         WHERE COALESCE(org_id, '') NOT IN (SELECT chain FROM audit_chains)",
    )?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn chain_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChainState> {
    Ok(ChainState {
        chain: row.get(0)?,
        head_seq: row.get(1)?,
        head_hash: row.get(2)?,
        anchor_seq: row.get(3)?,
        anchor_hash: row.get(4)?,
    })
}

const ENTRY_COLUMNS: &str = "seq, id, at, actor_user_id, action, target_type, target_id, \
                             org_id, ip, user_agent, request_id, outcome, details, prev_hash, \
                             hash";

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        seq: row.get(0)?,
        id: row.get(1)?,
        at: row.get(2)?,
        actor_user_id: row.get(3)?,
        action: row.get(4)?,
        target_type: row.get(5)?,
        target_id: row.get(6)?,
        org_id: row.get(7)?,
        ip: row.get(8)?,
        user_agent: row.get(9)?,
        request_id: row.get(10)?,
        outcome: row.get(11)?,
        details: row.get(12)?,
        prev_hash: row.get(13)?,
        hash: row.get(14)?,
    })
}

/// Calls `each` with every entry of one chain in order, stopping early if it says so.
pub fn walk_chain(
    conn: &Connection,
    chain: &str,
    mut each: impl FnMut(StoredEntry) -> bool,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log
         WHERE org_id IS ?1 ORDER BY seq"
    ))?;
    let org = (!chain.is_empty()).then_some(chain);
    let mut rows = stmt.query([org])?;
    while let Some(row) = rows.next()? {
        if !each(entry_from_row(row)?) {
            break;
        }
    }
    Ok(())
}

/// Filters of an audit query; every one set must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub action: Option<String>,
    pub actor_user_id: Option<String>,
    pub target_id: Option<String>,
    /// Inclusive lower bound on `at` (RFC 3339 in the stored format).
    pub since: Option<String>,
    /// Exclusive upper bound on `at`.
    pub until: Option<String>,
}

/// Which page of a newest-first listing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest entries.
    Start,
    /// Entries older than the one with this `seq`.
    Before(i64),
    /// Entries newer than the one with this `seq` (still listed newest first).
    After(i64),
}

/// Up to `limit` entries of one organization matching `filter`, newest first.
pub fn list_for_org(
    conn: &Connection,
    org_id: &str,
    filter: &Filter,
    cursor: Cursor,
    limit: u32,
) -> Result<Vec<StoredEntry>, StoreError> {
    let (before, after) = match cursor {
        Cursor::Start => (None, None),
        Cursor::Before(seq) => (Some(seq), None),
        Cursor::After(seq) => (None, Some(seq)),
    };
    // Only the conditions in use go into the SQL, each a plain comparison, so SQLite
    // seeks an index on (org_id, [filter column,] seq) straight to the page. Written as
    // `(?n IS NULL OR seq < ?n)` they could not bound the index: a page cost a walk over
    // every newer entry, and a filter a walk over the organization's whole log.
    let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE org_id = ?");
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&org_id];
    let conditions: [(&str, Option<&dyn rusqlite::ToSql>); 7] = [
        ("action = ?", filter.action.as_ref().map(|v| v as _)),
        (
            "actor_user_id = ?",
            filter.actor_user_id.as_ref().map(|v| v as _),
        ),
        ("target_id = ?", filter.target_id.as_ref().map(|v| v as _)),
        ("at >= ?", filter.since.as_ref().map(|v| v as _)),
        ("at < ?", filter.until.as_ref().map(|v| v as _)),
        ("seq < ?", before.as_ref().map(|v| v as _)),
        ("seq > ?", after.as_ref().map(|v| v as _)),
    ];
    for (condition, value) in conditions {
        if let Some(value) = value {
            sql.push_str(" AND ");
            sql.push_str(condition);
            values.push(value);
        }
    }
    // `After` reads the oldest entries past the cursor, then flips them to newest first,
    // so paging forward never skips entries between the cursor and the newest one.
    let order = if after.is_some() { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?"));
    values.push(&limit);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(values.as_slice(), entry_from_row)?;
    let mut entries: Vec<StoredEntry> = rows.collect::<Result<_, _>>()?;
    if after.is_some() {
        entries.reverse();
    }
    Ok(entries)
}

/// The `seq` of an organization's entry, for turning a cursor id into a position.
pub fn seq_of(conn: &Connection, org_id: &str, entry_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row_cached(
            "SELECT seq FROM audit_log WHERE id = ?1 AND org_id = ?2",
            [entry_id, org_id],
            |row| row.get(0),
        )
        .optional()?)
}

/// Removes the entries older than `cutoff` (RFC 3339), chain by chain, first moving each
/// chain's anchor to the newest entry removed so the rest still verifies. Returns how many
/// entries were removed. Call inside an IMMEDIATE transaction.
pub fn prune_before(conn: &Connection, cutoff: &str) -> Result<usize, StoreError> {
    let mut removed = 0;
    for chain in chains(conn)? {
        let org = (!chain.chain.is_empty()).then_some(chain.chain.as_str());
        let last: Option<(i64, String)> = conn
            .query_row_cached(
                "SELECT seq, hash FROM audit_log WHERE org_id IS ?1 AND at < ?2
                 ORDER BY seq DESC LIMIT 1",
                params![org, cutoff],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((seq, hash)) = last else { continue };
        conn.execute(
            "UPDATE audit_chains SET anchor_seq = ?2, anchor_hash = ?3 WHERE chain = ?1",
            params![chain.chain, seq, hash],
        )?;
        removed += conn.execute(
            "DELETE FROM audit_log WHERE org_id IS ?1 AND seq <= ?2",
            params![org, seq],
        )?;
    }
    Ok(removed)
}

/// Chains the entries written before the chain existed (migration 6), in order.
pub(super) fn chain_existing(conn: &Connection) -> rusqlite::Result<()> {
    let mut entries = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], entry_from_row)?;
        for entry in rows {
            entries.push(entry?);
        }
    }
    let mut heads: std::collections::HashMap<String, [u8; 32]> = Default::default();
    for entry in entries {
        let chain = chain_of(entry.org_id.as_deref()).to_owned();
        let prev = heads.get(&chain).copied().unwrap_or(GENESIS_HASH);
        let hash = entry_hash(&prev, &entry.canonical_bytes());
        conn.execute(
            "UPDATE audit_log SET prev_hash = ?2, hash = ?3 WHERE seq = ?1",
            params![entry.seq, hex(&prev), hex(&hash)],
        )?;
        advance_head(conn, &chain, entry.seq, &hex(&hash))?;
        heads.insert(chain, hash);
    }
    Ok(())
}

/// Lowercase hex, the stored form of hashes.
pub fn hex(bytes: &[u8; 32]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// A stored hash back into bytes; `None` if it is not 64 hex characters.
pub fn decode_hash(text: &str) -> Option<[u8; 32]> {
    data_encoding::HEXLOWER
        .decode(text.as_bytes())
        .ok()?
        .try_into()
        .ok()
}
