//! Scenario 3 at the store's level: SIGKILL in a loop under load loses
//! nothing that was acknowledged.
//!
//! The test runs itself again as a child process that inserts with many
//! requests in flight and prints each record id once its insert returned
//! `Ok` (the moment the listener would send AA). The parent kills the child
//! with SIGKILL at varying points, twenty times over the same directory,
//! then checks that every printed id is in the store.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use super::*;

const CHILD_DIR: &str = "HL7EDGE_STORE_CRASH_CHILD_DIR";
const THIS_TEST: &str = "store::tests::crash::sigkill_in_a_loop_loses_nothing_acknowledged";
const ROUNDS: usize = 20;
const IN_FLIGHT: usize = 64;

#[test]
fn sigkill_in_a_loop_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args(["--exact", THIS_TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kill_after = 20 + (round * 37) % 150;
        let mut seen = 0;
        while seen < kill_after {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(id) = line.strip_prefix("ACKED ") {
                acked.push(id.parse::<uuid::Uuid>().unwrap());
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Whatever the child printed before it died was acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("ACKED ").and_then(|id| id.parse().ok()) {
                acked.push(id);
            }
        }
    }
    assert!(
        acked.len() >= ROUNDS * 20,
        "only {} acknowledged",
        acked.len()
    );

    let cfg = StoreConfig::new(dir.path().join("queue.db"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open_store(&cfg);
        assert!(store.report.recovered.is_none());
        let kept: std::collections::HashSet<uuid::Uuid> = reader(&cfg)
            .pending(0, 1_000_000)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        let lost: Vec<_> = acked.iter().filter(|id| !kept.contains(id)).collect();
        assert!(
            lost.is_empty(),
            "{} of {} acknowledged records lost",
            lost.len(),
            acked.len()
        );
        close(store).await.unwrap();
    });
}

/// Runs in the child process until it is killed.
fn child(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open_store(&StoreConfig::new(dir.join("queue.db")));
        let run = std::process::id();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..100_000 {
            if tasks.len() >= IN_FLIGHT {
                tasks.join_next().await;
            }
            let handle = store.handle.clone();
            let msg = message("lab", &format!("R{run}-{n}"), &format!("OBX|{run}|{n}"));
            tasks.spawn(async move {
                if let Ok(Inserted::Stored { id, .. }) = handle.insert(msg).await {
                    println!("ACKED {id}");
                }
            });
        }
    });
}
