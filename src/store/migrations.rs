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
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "instance",
        sql: include_str!("migrations/0001_instance.sql"),
    },
    Migration {
        version: 2,
        name: "identity",
        sql: include_str!("migrations/0002_identity.sql"),
    },
    Migration {
        version: 3,
        name: "organizations",
        sql: include_str!("migrations/0003_organizations.sql"),
    },
    Migration {
        version: 4,
        name: "password_resets",
        sql: include_str!("migrations/0004_password_resets.sql"),
    },
    Migration {
        version: 5,
        name: "api_keys",
        sql: include_str!("migrations/0005_api_keys.sql"),
    },
];

/// The schema version this binary creates and understands.
pub const LATEST_SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Reads the schema version of an open database.
pub fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Applies every migration newer than the database, each in its own transaction.
pub(super) fn run(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let current = schema_version(conn)?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: current,
            supported: LATEST_SCHEMA_VERSION,
        });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        let apply = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Re-check inside the write lock: another process may have migrated meanwhile.
            if schema_version(&tx)? >= migration.version {
                return Ok(());
            }
            tx.execute_batch(migration.sql)?;
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
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, index as i64 + 1, "{}", migration.name);
        }
    }
}
