//! The append-only audit log (the table refuses updates and deletes).

use rusqlite::{Connection, params};

use super::StoreError;

/// One security-relevant action.
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

pub fn append(conn: &Connection, entry: &AuditEntry<'_>, now: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_log (id, at, actor_user_id, action, target_type, target_id, org_id,
                                ip, user_agent, request_id, outcome, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            uuid::Uuid::now_v7().to_string(),
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
            if entry.details.is_null() {
                "{}".to_owned()
            } else {
                entry.details.to_string()
            },
        ],
    )?;
    Ok(())
}
