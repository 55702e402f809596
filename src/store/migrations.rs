//! Forward-only schema migrations, embedded in the binary and numbered from 1.
//!
//! The schema version is SQLite's `user_version`. Each migration runs in its own
//! transaction together with the version bump, so a crash leaves the database at the old
//! or the new version, never between. A database whose version is newer than the binary
//! knows is refused rather than opened by code that does not understand it.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
    /// Data changes SQL cannot express (hashing existing rows), run after `sql` in the
    /// same transaction.
    then: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "instance",
        sql: include_str!("migrations/0001_instance.sql"),
        then: None,
    },
    Migration {
        version: 2,
        name: "identity",
        sql: include_str!("migrations/0002_identity.sql"),
        then: None,
    },
    Migration {
        version: 3,
        name: "organizations",
        sql: include_str!("migrations/0003_organizations.sql"),
        then: None,
    },
    Migration {
        version: 4,
        name: "password_resets",
        sql: include_str!("migrations/0004_password_resets.sql"),
        then: None,
    },
    Migration {
        version: 5,
        name: "api_keys",
        sql: include_str!("migrations/0005_api_keys.sql"),
        then: None,
    },
    Migration {
        version: 6,
        name: "audit_chain",
        sql: include_str!("migrations/0006_audit_chain.sql"),
        then: Some(super::audit::chain_existing),
    },
    Migration {
        version: 7,
        name: "audit_guards",
        sql: include_str!("migrations/0007_audit_guards.sql"),
        then: None,
    },
    Migration {
        version: 8,
        name: "idempotency",
        sql: include_str!("migrations/0008_idempotency.sql"),
        then: None,
    },
    Migration {
        version: 9,
        name: "vault",
        sql: include_str!("migrations/0009_vault.sql"),
        then: None,
    },
    Migration {
        version: 10,
        name: "files",
        sql: include_str!("migrations/0010_files.sql"),
        then: None,
    },
    Migration {
        version: 11,
        name: "webhooks",
        sql: include_str!("migrations/0011_webhooks.sql"),
        then: None,
    },
    Migration {
        version: 12,
        name: "transfers",
        sql: include_str!("migrations/0012_transfers.sql"),
        then: None,
    },
    Migration {
        version: 13,
        name: "link_secrets_and_download_tokens",
        sql: include_str!("migrations/0013_link_secrets_and_download_tokens.sql"),
        then: None,
    },
    Migration {
        version: 14,
        name: "org_suspension",
        sql: include_str!("migrations/0014_org_suspension.sql"),
        then: None,
    },
    Migration {
        version: 15,
        name: "messaging",
        sql: include_str!("migrations/0015_messaging.sql"),
        then: None,
    },
    Migration {
        version: 16,
        name: "messaging_attachments_and_prekeys",
        sql: include_str!("migrations/0016_messaging_attachments_and_prekeys.sql"),
        then: None,
    },
    Migration {
        version: 17,
        name: "scale_indexes",
        sql: include_str!("migrations/0017_scale_indexes.sql"),
        then: None,
    },
    Migration {
        version: 18,
        name: "user_identities",
        sql: include_str!("migrations/0018_user_identities.sql"),
        then: None,
    },
    Migration {
        version: 19,
        name: "credential_version",
        sql: include_str!("migrations/0019_credential_version.sql"),
        then: None,
    },
    Migration {
        version: 20,
        name: "plans",
        sql: include_str!("migrations/0020_plans.sql"),
        then: None,
    },
    Migration {
        version: 21,
        name: "billing",
        sql: include_str!("migrations/0021_billing.sql"),
        then: None,
    },
    Migration {
        version: 22,
        name: "conversions",
        sql: include_str!("migrations/0022_conversions.sql"),
        then: None,
    },
];

/// The schema version this binary creates and understands.
pub const LATEST_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Reads the schema version of an open database.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// A migration by number and name (what `sealbox migrate` lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationName {
    pub version: i64,
    pub name: &'static str,
}

/// The migrations a database at `conn` still needs, oldest first; refuses a database newer
/// than this binary.
pub fn pending(conn: &Connection, path: &Path) -> Result<Vec<MigrationName>, StoreError> {
    let current = schema_version(conn)?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: current,
            supported: LATEST_SCHEMA_VERSION,
        });
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| m.version > current)
        .map(|m| MigrationName {
            version: m.version,
            name: m.name,
        })
        .collect())
}

/// Applies every migration newer than the database, each in its own transaction; returns
/// the ones this call applied.
pub(super) fn run(conn: &mut Connection, path: &Path) -> Result<Vec<MigrationName>, StoreError> {
    let todo = pending(conn, path)?;
    let mut applied = Vec::new();
    for migration in MIGRATIONS
        .iter()
        .filter(|m| todo.iter().any(|t| t.version == m.version))
    {
        let apply = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Re-check inside the write lock: another process may have migrated meanwhile.
            if schema_version(&tx)? >= migration.version {
                return Ok(());
            }
            tx.execute_batch(migration.sql)?;
            if let Some(then) = migration.then {
                then(&tx)?;
            }
            tx.pragma_update(None, "user_version", migration.version)?;
            tx.commit()
        };
        apply(conn).map_err(|source| StoreError::Migration {
            version: migration.version,
            name: migration.name,
            source,
        })?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        applied.push(MigrationName {
            version: migration.version,
            name: migration.name,
        });
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries written before the chain existed are chained, in order, by migration 6.
    #[test]
    fn existing_audit_entries_are_chained_by_the_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..5] {
            conn.execute_batch(migration.sql).unwrap();
            conn.pragma_update(None, "user_version", migration.version)
                .unwrap();
        }
        for (n, org) in [None, Some("org-a"), Some("org-a"), None, Some("org-b")]
            .into_iter()
            .enumerate()
        {
            conn.execute(
                "INSERT INTO audit_log (id, at, action, org_id, outcome)
                 VALUES (?1, '2026-11-01T00:00:00.000Z', 'test.action', ?2, 'success')",
                rusqlite::params![format!("entry-{n}"), org],
            )
            .unwrap();
        }
        run(&mut conn, Path::new(":memory:")).unwrap();
        let reports = crate::service::audit::verify_all(&conn).unwrap();
        let entries: Vec<(Option<&str>, u64)> = reports
            .iter()
            .map(|r| (r.org_id.as_deref(), r.entries))
            .collect();
        assert_eq!(entries, [(None, 2), (Some("org-a"), 2), (Some("org-b"), 1)]);
        assert!(reports.iter().all(|r| r.is_valid()), "{reports:?}");
        let refused = conn.execute("UPDATE audit_log SET action = 'x'", []);
        assert!(refused.is_err(), "the guards are back");
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
        }
    }
}
