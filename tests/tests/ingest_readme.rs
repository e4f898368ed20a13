//! The README's hub section, run as written: the Debian setup commands (role and database made
//! with `psql` and `createdb` against a real PostgreSQL), the ingest started with the
//! connection string of that unprivileged owner (it creates its schema itself), and every query
//! of the `psql` cookbook against the records two gateways sent.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hl7edge_e2e::hl7gen::{self, Kind};
use hl7edge_e2e::ingest::{Ingest, IngestRig, wait_records};

const README: &str = include_str!("../../README.md");

/// The fenced blocks of `language` between the heading `from` and the next `## ` heading.
fn blocks(from: &str, language: &str) -> Vec<String> {
    let section = README
        .split_once(from)
        .map_or("", |(_, rest)| rest.split("\n## ").next().unwrap_or(""));
    let fence = format!("```{language}\n");
    section
        .split(&fence)
        .skip(1)
        .filter_map(|b| b.split_once("```").map(|(body, _)| body.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_readme_setup_and_every_cookbook_query_run_against_a_real_postgresql() -> Result<()> {
    let mut rig = IngestRig::start(0, |c| c).await?;
    let setup = blocks("### Setting it up on Debian", "sh");
    let setup = setup.first().context("the README's setup block")?;
    let mut ran = 0;
    for line in setup.lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with("apt-get install") {
            continue; // tests/run.sh installs the package
        }
        let Some(command) = line.strip_prefix("runuser -u postgres -- ") else {
            bail!("unexpected setup line: {line}");
        };
        // As the postgres superuser of the test's server (libpq's environment variables).
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "PATH={}:$PATH {command}",
                rig.pg.bin_dir().display()
            ))
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", rig.pg.port().to_string())
            .env("PGUSER", "postgres")
            .status()?;
        ensure!(status.success(), "{command}: {status}");
        ran += 1;
    }
    ensure!(ran == 2, "the setup makes a role and a database");

    // The ingest as the database's owner, with the README's password.
    let mut spec = rig.ingest_spec("readme-ingest");
    spec.database = rig.pg.url_for("hl7edge", "change-me", "hl7edge");
    rig.ingests.push(Ingest::start(spec).await?);
    let mut sender = rig.sender(0);
    sender
        .send_all(hl7gen::messages(Kind::Lab, "lisa", 0..25))
        .await;
    ensure!(sender.acked().len() == 25);
    let (client, connection) = tokio_postgres::connect(
        &rig.pg.url_for("hl7edge", "change-me", "hl7edge"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    ensure!(wait_records(&client, 25, Duration::from_secs(30)).await? == 25);

    let queries = blocks("### Query cookbook", "sql");
    ensure!(queries.len() == 6, "{} cookbook queries", queries.len());
    for (n, sql) in queries.iter().enumerate() {
        if sql.starts_with("BEGIN;") {
            client
                .batch_execute(sql)
                .await
                .with_context(|| format!("cookbook block {n}:\n{sql}"))?;
            continue;
        }
        let rows = client
            .query(sql.as_str(), &[])
            .await
            .with_context(|| format!("cookbook query {n}:\n{sql}"))?;
        match n {
            // The patient of message 0 (MRN0001000 at CLINIC): one latest result per test.
            0 => ensure!(rows.len() == 20, "latest results: {} rows", rows.len()),
            // Potassium is in the generated panel; its times are from 2025, older than a week.
            1 => ensure!(rows.is_empty(), "{} rows", rows.len()),
            // The generated codes are LOINC as sent: nothing unmapped.
            2 => ensure!(rows.is_empty(), "{} rows", rows.len()),
            3 => ensure!(
                rows.len() == 1 && rows[0].get::<_, i64>(2) == 25,
                "{rows:?}"
            ),
            _ => ensure!(rows.is_empty(), "dead letters: {}", rows.len()),
        }
    }
    // The retention block deleted nothing recent.
    ensure!(wait_records(&client, 25, Duration::ZERO).await? == 25);
    Ok(())
}
