//! Writing a batch to PostgreSQL: one transaction, idempotent by record id,
//! retried until it commits.
//!
//! Invariants:
//! - [`Store::commit`] returns only once every item of the batch is
//!   committed (records, heartbeats, dead letters); it never gives up on a
//!   batch, so nothing is acknowledged to the broker that is not in the
//!   database;
//! - records are inserted with `ON CONFLICT (id) DO NOTHING ... RETURNING
//!   id`, and their typed rows (identifiers, observations) are copied in
//!   (binary `COPY`, in the same transaction) only for the ids that
//!   statement returned, i.e. the rows it inserted: a record delivered
//!   twice, by one ingest or by two at once, is one row with one set of
//!   typed rows (a second transaction inserting the same id waits for the
//!   first to commit and then finds it present);
//! - a connection problem (PostgreSQL down or restarting, a network error,
//!   a serialization or deadlock abort) drops the connection and retries
//!   the whole batch after a backoff (1 s doubling to 30 s), logging each
//!   failure once with what to check;
//! - a data error (SQLSTATE classes 22, 23 and 54: a value PostgreSQL
//!   cannot hold) is pinned to its message by committing the batch message
//!   by message; the message the database refuses becomes a dead letter
//!   with the SQLSTATE, the rest commit normally. A crafted payload can
//!   therefore neither stall the ingest nor take other records with it;
//! - log lines carry SQLSTATE codes and counts, never the database's
//!   message text (it may quote a value).

use std::collections::HashSet;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Json;
use tokio_postgres::{Client, NoTls, Statement, Transaction};
use tracing::{info, warn};
use uuid::Uuid;

use crate::ingest::classify::{DeadLetter, DeadReason, Item};
use crate::ingest::rows::{self, CopyRow, IdentifierRow, ObservationRow, Rows, timestamp};
use crate::ingest::schema::{self, SchemaError};

/// Longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The insert of a batch's records: `$1..$11` are column arrays (see
/// `rows`); returns the id of every row it inserted (not those already
/// present), whose typed rows are then copied in.
const INSERT_RECORDS: &str = "
INSERT INTO records (id, gateway, source, message_type, control_id, sequence,
                     received_at, message_time, mapping_version, record, raw)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::int8[], $7::timestamptz[], $8::timestamptz[], $9::text[],
                     $10::jsonb[], $11::bytea[])
ON CONFLICT (id) DO NOTHING
RETURNING id";

const INSERT_HEARTBEAT: &str = "
INSERT INTO heartbeats (gateway, sent_at, agent_version, uptime_s, queue_depth,
                        oldest_unsent_ms, disk_free_bytes, db_bytes, storage_alarm, heartbeat)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (gateway, sent_at) DO NOTHING";

const INSERT_DEAD_LETTER: &str = "
INSERT INTO dead_letters (topic, reason, detail, payload, payload_sha256)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (topic, payload_sha256) DO NOTHING";

/// Why the store cannot be used at all (retrying would not help).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `--database` value is not a connection string.
    #[error(
        "--database: {0}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE (or key=value form: host=... user=... dbname=...)"
    )]
    Url(tokio_postgres::Error),
    /// PostgreSQL refused the login or the database (SQLSTATE 28xxx, 3D000).
    #[error(
        "PostgreSQL refused the connection: {0} — check the user, password and database name in --database (and pg_hba.conf)"
    )]
    Refused(tokio_postgres::Error),
    /// The schema is newer than this build.
    #[error(transparent)]
    Schema(SchemaError),
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Record rows inserted by this commit.
    pub new_records: u64,
    /// Records already in the database (redelivered or republished).
    pub duplicate_records: u64,
    /// Heartbeats kept.
    pub heartbeats: u64,
    /// Dead letters kept, by reason (including records the database refused).
    pub dead_letters: Vec<DeadReason>,
    /// Connection attempts or commits that failed before this one succeeded.
    pub retries: u64,
}

/// The PostgreSQL side of the ingest.
pub struct Store {
    config: tokio_postgres::Config,
    conn: Option<Conn>,
}

/// A live connection with its prepared statements.
struct Conn {
    client: Client,
    statements: Statements,
}

/// The prepared statements of a connection.
struct Statements {
    records: Statement,
    identifiers: Statement,
    observations: Statement,
    heartbeat: Statement,
    dead_letter: Statement,
}

/// How an attempt failed.
enum Failure {
    /// Retry the whole thing after reconnecting.
    Connection(tokio_postgres::Error),
    /// The data of one message is at fault.
    Data(tokio_postgres::Error),
}

impl Store {
    /// Parses `url`; connects and migrates, retrying while PostgreSQL is
    /// unreachable. Fails at once on what a retry cannot fix.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(StoreError::Url)?;
        let mut store = Store { config, conn: None };
        let mut backoff = Backoff::new();
        loop {
            match store.connect().await {
                Ok(()) => return Ok(store),
                Err(ConnectError::Fatal(e)) => return Err(e),
                Err(ConnectError::Retry(e)) => {
                    warn!(
                        cause = %short(&e),
                        retry_in_s = backoff.peek().as_secs(),
                        "PostgreSQL is not reachable; retrying (nothing is read from the broker until it is)"
                    );
                    backoff.wait().await;
                }
            }
        }
    }

    /// Commits every item, retrying until it is done (see the module doc).
    /// Items the database refuses are turned into dead letters in place;
    /// `down` is called at each failed attempt (for the metrics).
    pub async fn commit(&mut self, items: &mut [Item], down: impl Fn()) -> Committed {
        let mut backoff = Backoff::new();
        let mut retries = 0;
        // Items before `done` are committed (only when isolating).
        let mut done = 0;
        let mut isolate = false;
        let mut result = Committed::default();
        loop {
            if self.conn.is_none() {
                if let Err(e) = self.connect().await {
                    let e = match e {
                        ConnectError::Fatal(e) => e.to_string(),
                        ConnectError::Retry(e) => short(&e),
                    };
                    warn!(cause = %e, retry_in_s = backoff.peek().as_secs(), "PostgreSQL is down; the batch waits, nothing is acknowledged");
                    down();
                    retries += 1;
                    backoff.wait().await;
                    continue;
                }
                info!("connected to PostgreSQL again; committing the waiting batch");
            }
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let attempt = if isolate {
                commit_one_by_one(conn, items, &mut done, &mut result).await
            } else {
                commit_all(conn, items).await.map(|c| result = c)
            };
            match attempt {
                Ok(()) => {
                    result.retries = retries;
                    return result;
                }
                Err(Failure::Data(e)) if !isolate => {
                    warn!(
                        sqlstate = code(&e),
                        "the database refused a value in the batch; committing it message by message to find which"
                    );
                    isolate = true;
                }
                Err(Failure::Data(e)) => {
                    // Cannot happen: commit_one_by_one dead-letters data errors.
                    warn!(sqlstate = code(&e), "data error while isolating; retrying");
                }
                Err(Failure::Connection(e)) => {
                    warn!(cause = %short(&e), retry_in_s = backoff.peek().as_secs(), "commit failed; reconnecting, nothing is acknowledged");
                    down();
                    self.conn = None;
                    retries += 1;
                    backoff.wait().await;
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<(), ConnectError> {
        let (mut client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(ConnectError::classify)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(cause = %short(&e), "PostgreSQL connection closed");
            }
        });
        let applied = schema::migrate(&mut client).await.map_err(|e| match e {
            SchemaError::Database(e) => ConnectError::classify(e),
            other => ConnectError::Fatal(StoreError::Schema(other)),
        })?;
        if !applied.is_empty() {
            info!(versions = ?applied, "database schema migrated");
        }
        let prepare = async |sql| client.prepare(sql).await.map_err(ConnectError::classify);
        let statements = Statements {
            records: prepare(INSERT_RECORDS).await?,
            identifiers: prepare(IdentifierRow::COPY).await?,
            observations: prepare(ObservationRow::COPY).await?,
            heartbeat: prepare(INSERT_HEARTBEAT).await?,
            dead_letter: prepare(INSERT_DEAD_LETTER).await?,
        };
        self.conn = Some(Conn { client, statements });
        Ok(())
    }
}

/// One transaction for the whole batch.
async fn commit_all(conn: &mut Conn, items: &[Item]) -> Result<Committed, Failure> {
    let tx = conn.client.transaction().await.map_err(Failure::from)?;
    let mut c = insert(&tx, &conn.statements, items).await?;
    tx.commit().await.map_err(Failure::from)?;
    c.retries = 0;
    Ok(c)
}

/// One transaction per item from `done` on; an item the database refuses
/// becomes a dead letter and is committed as one.
async fn commit_one_by_one(
    conn: &mut Conn,
    items: &mut [Item],
    done: &mut usize,
    total: &mut Committed,
) -> Result<(), Failure> {
    while let Some(item) = items.get_mut(*done) {
        let one = std::slice::from_ref(item);
        match commit_all(conn, one).await {
            Ok(c) => {
                total.new_records += c.new_records;
                total.duplicate_records += c.duplicate_records;
                total.heartbeats += c.heartbeats;
                total.dead_letters.extend(c.dead_letters);
                *done += 1;
            }
            Err(Failure::Data(e)) => {
                warn!(
                    sqlstate = code(&e),
                    "the database refused one message; keeping it as a dead letter"
                );
                *item = Item::Dead(refused(item, &e));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Inserts every item inside `tx`.
async fn insert(
    tx: &Transaction<'_>,
    statements: &Statements,
    items: &[Item],
) -> Result<Committed, Failure> {
    let mut c = Committed::default();
    // Records go in sorted by id: two ingests inserting overlapping ids
    // (a republished record) then take the row locks in the same order and
    // cannot deadlock; sorted here, the database need not sort the JSONB.
    let mut entries: Vec<(&str, &str, &hl7edge_protocol::wire::Entry)> = Vec::new();
    for item in items {
        match item {
            Item::Records { envelope, .. } => {
                entries.extend(
                    envelope
                        .entries
                        .iter()
                        .map(|e| (envelope.gateway.as_str(), envelope.source.as_str(), e)),
                );
            }
            Item::Heartbeat {
                gateway,
                heartbeat: hb,
                ..
            } => {
                insert_heartbeat(tx, &statements.heartbeat, &gateway.to_string(), hb).await?;
                c.heartbeats += 1;
            }
            Item::Dead(dead) => {
                insert_dead_letter(tx, &statements.dead_letter, dead).await?;
                c.dead_letters.push(dead.reason);
            }
        }
    }
    entries.sort_by_key(|(_, _, e)| e.id);
    let mut rows = Rows::default();
    for (gateway, source, entry) in &entries {
        rows.push(gateway, source, entry);
    }
    let entries = entries.len() as u64;
    if !rows.is_empty() {
        let new: HashSet<Uuid> = tx
            .query(&statements.records, &params(&rows))
            .await
            .map_err(Failure::from)?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(Failure::from)?;
        c.new_records = new.len() as u64;
        if !new.is_empty() {
            copy_typed_rows(tx, statements, &rows, &new).await?;
        }
    }
    c.duplicate_records = entries.saturating_sub(c.new_records);
    Ok(c)
}

/// Copies the identifier and observation rows of the records in `new`.
async fn copy_typed_rows(
    tx: &Transaction<'_>,
    statements: &Statements,
    rows: &Rows<'_>,
    new: &HashSet<Uuid>,
) -> Result<(), Failure> {
    let identifiers = rows
        .inserted(new)
        .flat_map(|(id, record)| rows::identifiers(id, record));
    copy_rows(tx, &statements.identifiers, identifiers).await?;
    let observations = rows
        .inserted(new)
        .flat_map(|(id, record)| rows::observations(id, record));
    copy_rows(tx, &statements.observations, observations).await
}

/// Writes `rows` through the binary `COPY` statement `statement` (prepared from `R::COPY`).
async fn copy_rows<const N: usize, R: CopyRow<N>>(
    tx: &Transaction<'_>,
    statement: &Statement,
    rows: impl Iterator<Item = R>,
) -> Result<(), Failure> {
    let sink = tx.copy_in(statement).await.map_err(Failure::from)?;
    let writer = BinaryCopyInWriter::new(sink, &R::TYPES);
    tokio::pin!(writer);
    for row in rows {
        writer
            .as_mut()
            .write(&row.values())
            .await
            .map_err(Failure::from)?;
    }
    writer.finish().await.map_err(Failure::from)?;
    Ok(())
}

fn params<'r>(rows: &'r Rows<'_>) -> [&'r (dyn tokio_postgres::types::ToSql + Sync); 11] {
    let r = &rows.records;
    [
        &r.id,
        &r.gateway,
        &r.source,
        &r.message_type,
        &r.control_id,
        &r.sequence,
        &r.received_at,
        &r.message_time,
        &r.mapping_version,
        &r.record,
        &r.raw,
    ]
}

async fn insert_heartbeat(
    tx: &Transaction<'_>,
    statement: &Statement,
    gateway: &str,
    hb: &hl7edge_protocol::telemetry::Heartbeat,
) -> Result<(), Failure> {
    let big = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let sent_at = timestamp(hb.sent_at_ms);
    tx.execute(
        statement,
        &[
            &gateway,
            &sent_at,
            &hb.version,
            &big(hb.uptime_s),
            &big(hb.queue.depth),
            &hb.queue.oldest_unsent_age_ms.map(big),
            &big(hb.storage.disk_free_bytes),
            &big(hb.storage.db_bytes),
            &hb.storage.alarm,
            &Json(hb),
        ],
    )
    .await
    .map_err(Failure::from)?;
    Ok(())
}

async fn insert_dead_letter(
    tx: &Transaction<'_>,
    statement: &Statement,
    dead: &DeadLetter,
) -> Result<(), Failure> {
    let digest = Sha256::digest(&dead.payload).to_vec();
    tx.execute(
        statement,
        &[
            &dead.topic,
            &dead.reason.as_str(),
            &dead.detail,
            &dead.payload.as_ref(),
            &digest,
        ],
    )
    .await
    .map_err(Failure::from)?;
    Ok(())
}

/// The dead letter for an item the database refused.
fn refused(item: &Item, e: &tokio_postgres::Error) -> DeadLetter {
    item.refused(&format!(
        "PostgreSQL refused the rows (SQLSTATE {}): {}",
        code(e),
        e.as_db_error().map_or("", |d| d.message())
    ))
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        let data = e.code().is_some_and(|c| {
            let c = c.code();
            c.starts_with("22") || c.starts_with("23") || c.starts_with("54")
        });
        if data {
            Failure::Data(e)
        } else {
            Failure::Connection(e)
        }
    }
}

/// Why a connection attempt failed.
enum ConnectError {
    /// Retrying cannot help.
    Fatal(StoreError),
    /// Retry after a backoff.
    Retry(tokio_postgres::Error),
}

impl ConnectError {
    fn classify(e: tokio_postgres::Error) -> ConnectError {
        let refused = e
            .code()
            .is_some_and(|c| c.code().starts_with("28") || c.code() == "3D000");
        if refused {
            ConnectError::Fatal(StoreError::Refused(e))
        } else {
            ConnectError::Retry(e)
        }
    }
}

/// The SQLSTATE of an error, or `-` for a connection error.
fn code(e: &tokio_postgres::Error) -> &str {
    e.code().map_or("-", |c| c.code())
}

/// An error for a log line: the SQLSTATE and the kind, without the
/// database's message (it may quote a value), or the IO cause.
fn short(e: &tokio_postgres::Error) -> String {
    match (e.code(), std::error::Error::source(e)) {
        (Some(c), _) => format!("SQLSTATE {}", c.code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// Jittered exponential backoff, 1 s doubling to [`MAX_BACKOFF`].
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: Duration::from_secs(1),
        }
    }

    fn peek(&self) -> Duration {
        self.next
    }

    async fn wait(&mut self) {
        // Up to a quarter of jitter, so a fleet of ingests does not retry in step.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            ^ std::process::id();
        let jitter = self.next.mul_f64(f64::from(nanos % 250) / 1000.0);
        tokio::time::sleep(self.next + jitter).await;
        self.next = (self.next * 2).min(MAX_BACKOFF);
    }
}
