//! `ingest --fhir-out DIR|-`: every committed record also as a FHIR R4
//! transaction bundle (`hl7edge_protocol::fhir`), one NDJSON line each, for
//! a FHIR server's bulk loader or a stream (a Kafka producer reading stdin).
//!
//! Invariants:
//! - A batch's bundles are written after its commit and before its
//!   messages are acknowledged: a bundle is never of a record the database
//!   does not hold, and a crash between the two redelivers the messages, so
//!   every committed record reaches the output at least once.
//! - A record delivered again (a redelivery, a gateway republishing) is
//!   written again: the bundles' requests are conditional on business
//!   identifiers, so loading one twice changes nothing.
//! - In a directory, a file is complete when it appears: one file per batch,
//!   written under a temporary name, synced, then renamed
//!   (`bundles-{unix ms}-{n}.ndjson`), so a loader that picks up `*.ndjson`
//!   never reads half a file.
//! - A write that fails is logged (with the cause, never content) and
//!   counted; the ingest goes on, since the database holds every record
//!   (`records.record`) and its custody does not depend on this output.
//! - Only envelopes the ingest trusted (the gateway is its topic's) are
//!   rendered; dead letters never are.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hl7edge_protocol::fhir;

use super::batch::Batch;
use super::classify::Item;

/// Where the bundles go.
#[derive(Debug)]
pub enum FhirOut {
    /// Standard output, one line per bundle, flushed after each batch.
    Stdout,
    /// A directory that receives one file per batch.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// Files written so far (makes names unique within a millisecond).
        written: u64,
    },
}

impl FhirOut {
    /// The output `arg` names: `-` is standard output, anything else a
    /// directory (created when missing).
    pub fn open(arg: &Path) -> io::Result<FhirOut> {
        if arg == Path::new("-") {
            return Ok(FhirOut::Stdout);
        }
        std::fs::create_dir_all(arg)?;
        Ok(FhirOut::Dir {
            dir: arg.to_owned(),
            written: 0,
        })
    }

    /// Writes the bundles of every record in `batch` as of `now_ms`;
    /// returns how many. Nothing is written for a batch without records.
    pub fn write(&mut self, batch: &Batch, now_ms: i64) -> io::Result<usize> {
        let (lines, count) = render(batch)?;
        if count == 0 {
            return Ok(0);
        }
        match self {
            FhirOut::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(&lines)?;
                out.flush()?;
            }
            FhirOut::Dir { dir, written } => {
                *written += 1;
                let name = format!("bundles-{now_ms}-{written}.ndjson");
                let temporary = dir.join(format!(".{name}.tmp"));
                let mut file = std::fs::File::create(&temporary)?;
                file.write_all(&lines)?;
                file.sync_all()?;
                std::fs::rename(&temporary, dir.join(&name))?;
            }
        }
        Ok(count)
    }
}

/// The NDJSON lines of every record in `batch`, and their count.
fn render(batch: &Batch) -> io::Result<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut count = 0;
    for pending in &batch.pending {
        let Item::Records {
            gateway, envelope, ..
        } = &pending.item
        else {
            continue;
        };
        let gateway = gateway.to_string();
        for entry in &envelope.entries {
            let origin = fhir::Origin {
                record_id: entry.id,
                received_at_ms: entry.received_at_ms,
                gateway: &gateway,
                source: &envelope.source,
                mapping_version: &entry.mapping_version,
            };
            let bundle = fhir::bundle(&entry.record, &origin);
            serde_json::to_writer(&mut out, &fhir::Json(&bundle)).map_err(io::Error::other)?;
            out.push(b'\n');
            count += 1;
        }
    }
    Ok((out, count))
}
