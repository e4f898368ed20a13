//! The hub's PostgreSQL schema and its versioned, forward-only migrations.
//!
//! Invariants:
//! - `schema_migrations` lists every migration applied, by version; the
//!   pending migrations are applied in one transaction together with their
//!   rows in that table (PostgreSQL's DDL is transactional), so a crash
//!   leaves them either applied and listed or neither;
//! - migrations run under a transaction-scoped advisory lock
//!   ([`LOCK_KEY`]), so two ingest processes starting at once apply them
//!   once: the second waits, then finds them listed;
//! - a database migrated by a newer hub (a version this build does not
//!   know) is refused with a message, never written to;
//! - migrations are only ever appended to [`MIGRATIONS`]; an applied one is
//!   never edited (a change is a new migration).
//!
//! The tables (version 1):
//!
//! | table | one row per | key |
//! |---|---|---|
//! | `records` | record (envelope entry) | `id` (the gateway's record id) |
//! | `patient_identifiers` | PID-3 identifier of a record | `(record_id, ordinal)` |
//! | `observations` | OBX of an ORU record | `(record_id, ordinal)` |
//! | `heartbeats` | heartbeat of a gateway | `(gateway, sent_at)` |
//! | `dead_letters` | refused payload (topic and bytes) | `id`; unique `(topic, payload_sha256)` |
//!
//! and the view `heartbeat_series` (one row per heartbeat with a `time`
//! column and numeric columns, the shape Grafana's PostgreSQL data source
//! plots directly).

use tokio_postgres::Client;

/// The advisory lock key taken while migrating (ASCII "hl7edgeM").
pub const LOCK_KEY: i64 = 0x686c_3765_6467_654d;

/// One migration: its version and the SQL that applies it.
pub struct Migration {
    /// Applied in ascending order, starting at 1, without gaps.
    pub version: i32,
    /// A short name, stored with the version.
    pub name: &'static str,
    /// The statements (run as one batch inside the migration's transaction).
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "records, typed rows, heartbeats, dead letters",
    sql: include_str!("schema/0001_initial.sql"),
}];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The database holds migrations this build does not know.
    #[error(
        "the database is at schema version {found}, newer than this hl7edge-hub knows ({known}); upgrade hl7edge-hub (migrations are forward-only)"
    )]
    Newer {
        /// The highest version in the database.
        found: i32,
        /// The highest version this build knows.
        known: i32,
    },
    /// A statement failed.
    #[error("migrating the database: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// Applies every migration the database lacks; returns the versions applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, SchemaError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?;
    let current: i32 = row.get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(SchemaError::Newer {
            found: current,
            known,
        });
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        applied.push(m.version);
    }
    tx.commit().await?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_start_at_one_and_have_no_gaps() {
        for (n, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, n + 1, "{}", m.name);
        }
    }

    #[test]
    fn the_record_table_is_keyed_by_record_id_and_has_a_nullable_sequence() {
        let sql = MIGRATIONS[0].sql;
        assert!(sql.contains("id uuid PRIMARY KEY"));
        assert!(sql.contains("sequence bigint,"), "nullable until schema 3");
    }
}
