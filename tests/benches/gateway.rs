//! The gateway benchmark: the release agent binary against a real mosquitto over mutual TLS on
//! loopback. It prints machine facts and a table of target, measured value and pass/MISS for
//! end-to-end throughput, ACK latency, memory and backlog drain.
//!
//! ```text
//! cargo build --release -p hl7edge
//! cargo bench -p hl7edge-e2e --bench gateway                 # full run (1,000,000 backlog)
//! cargo bench -p hl7edge-e2e --bench gateway -- --quick      # short check, 50,000 backlog
//! cargo bench -p hl7edge-e2e --bench gateway -- --backlog 100000
//! cargo bench -p hl7edge-e2e --bench gateway -- --quick --live-only  # no backlog phase
//! cargo bench -p hl7edge-e2e --bench gateway -- --quick --receipt-mode  # hub.custody = "receipt"
//! ```
//!
//! `--receipt-mode` runs the agent with `hub.custody = "receipt"` and a stand-in hub that
//! answers every records payload at once with a custody receipt (no database in between), so
//! the figures show what receipt mode costs the gateway; the drain then also reports when the
//! last record was receipted (deleted), not only when it reached the subscriber.
//!
//! Run the agent with `RUST_LOG=info,hl7edge::store=debug` to have the store writer's figures
//! (requests per commit, commit time, gathering waits) printed before the table.
//!
//! `HL7EDGE_BIN` overrides the agent binary (default: `hl7edge` next to this program, i.e.
//! `target/release/hl7edge`); `HL7EDGE_BENCH_BACKLOG` sets the backlog size.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hl7edge_e2e::agent::{Agent, AgentConfig};
use hl7edge_e2e::bench::cpu::{self, CpuSnapshot};
use hl7edge_e2e::bench::disk::{self, SyncLatency};
use hl7edge_e2e::bench::load::{self, ClosedLoop};
use hl7edge_e2e::bench::prefill::prefill;
use hl7edge_e2e::bench::records::RecordCount;
use hl7edge_e2e::bench::report::{Goal, Row, print_table, quantile};
use hl7edge_e2e::bench::sys;
use hl7edge_e2e::broker::Broker;
use hl7edge_e2e::mqtt::{ClientOptions, Receipter, Subscriber};
use hl7edge_e2e::pki::Pki;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Synchronous 4 KiB overwrites timed in the agent's data directory.
const DISK_SAMPLES: usize = 300;

/// Queue cap for the benchmark agents: a 1,000,000-message backlog with raw HL7 needs ~6 GB.
const MAX_BYTES: u64 = 16 << 30;

struct Options {
    quick: bool,
    live_only: bool,
    receipt_mode: bool,
    backlog: u64,
    warmup: Duration,
    measure: Duration,
    paced: Duration,
}

fn options() -> Result<Options, BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let mut backlog = if quick { 50_000 } else { 1_000_000 };
    if let Ok(value) = std::env::var("HL7EDGE_BENCH_BACKLOG") {
        backlog = value.parse()?;
    }
    if let Some(i) = args.iter().position(|a| a == "--backlog") {
        backlog = args.get(i + 1).ok_or("--backlog needs a number")?.parse()?;
    }
    let secs = |quick_s, full_s| Duration::from_secs(if quick { quick_s } else { full_s });
    Ok(Options {
        quick,
        live_only: args.iter().any(|a| a == "--live-only"),
        receipt_mode: args.iter().any(|a| a == "--receipt-mode"),
        backlog,
        warmup: secs(1, 3),
        measure: secs(3, 10),
        paced: secs(3, 10),
    })
}

/// The release agent next to this program (`target/release/deps/gateway-*` →
/// `target/release/hl7edge`) unless `HL7EDGE_BIN` says otherwise.
fn agent_binary() -> Result<PathBuf, BoxError> {
    if let Some(path) = std::env::var_os("HL7EDGE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("unexpected benchmark location")?
        .join("hl7edge");
    if !path.exists() {
        return Err(format!(
            "{} missing: run `cargo build --release -p hl7edge` first",
            path.display()
        )
        .into());
    }
    Ok(path)
}

fn main() -> Result<(), BoxError> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> Result<(), BoxError> {
    let binary = agent_binary()?;
    println!("hl7edge gateway benchmark");
    println!(
        "command : cargo build --release -p hl7edge && cargo bench -p hl7edge-e2e --bench gateway{}{}",
        if options.quick {
            " -- --quick".to_owned()
        } else {
            format!(" -- --backlog {}", options.backlog)
        },
        if options.receipt_mode {
            " --receipt-mode"
        } else {
            ""
        }
    );
    println!(
        "custody : {}",
        if options.receipt_mode {
            "receipt (a stand-in hub receipts every payload at once)"
        } else {
            "puback"
        }
    );
    println!("agent   : {}", binary.display());
    println!("machine : {} CPUs, {}", sys::cpus(), sys::cpu_model());
    println!(
        "load avg: {} (at start; the machine is shared)",
        sys::load_average()
    );
    println!("senders and subscriber run on the same machine as agent and broker\n");

    let pki = Pki::generate()?;
    let mut rows = Vec::new();
    live_phases(&binary, &pki, &options, &mut rows).await?;
    if !options.live_only {
        backlog_phase(&binary, &pki, &options, &mut rows).await?;
    }

    println!();
    print_table(&rows);
    println!("\nload avg at end: {}", sys::load_average());
    Ok(())
}

fn agent_config(pki: &Pki, url: &str, options: &Options) -> AgentConfig {
    let mut config = AgentConfig::new(pki, url).set("storage.max_bytes", "16 GiB");
    if options.receipt_mode {
        config = config.set("hub.custody", "receipt");
    }
    config.log_level = "info".into();
    config
}

/// In receipt mode, the stand-in hub that receipts every records payload.
async fn receipter(
    broker: &Broker,
    pki: &Pki,
    options: &Options,
    name: &str,
) -> Result<Option<Receipter>, BoxError> {
    if !options.receipt_mode {
        return Ok(None);
    }
    let hub = ClientOptions::new(name, &pki.ca, Some(&pki.subscriber));
    Ok(Some(
        Receipter::start(broker.addr(), &hub, "hl7edge/v1").await?,
    ))
}

async fn live_phases(
    binary: &std::path::Path,
    pki: &Pki,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), BoxError> {
    let broker = Broker::start(pki).await?;
    let hub = ClientOptions::new("bench-hub", &pki.ca, Some(&pki.subscriber));
    let subscriber = Subscriber::connect(broker.addr(), &hub, "hl7edge/v1/#").await?;
    let receipts = receipter(&broker, pki, options, "bench-receipts").await?;
    let agent = Agent::start_binary(binary, &agent_config(pki, &broker.url(), options)).await?;
    let addr = agent.mllp_addr("lab").ok_or("no lab listener")?;
    let pid = agent.pid().ok_or("agent not running")?;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = sys::rss(pid).ok_or("agent gone")?;
    rows.push(Row::new(
        "RSS idle after start (VmRSS)",
        "MB",
        Goal::AtMost(10.0),
        Some(mb(idle.current_kib)),
        "",
    ));

    let disk = disk_latency(&agent.database_path(), rows).await?;
    let watched = [
        ("agent", Some(pid)),
        ("broker", sys::pid_with_arg(&broker.config_path())),
        ("bench", Some(std::process::id())),
    ];
    let mut counter = RecordCount::new();
    for senders in [16, 32] {
        let live = Live {
            subscriber: &subscriber,
            addr,
            watched: &watched,
            disk,
        };
        throughput(&live, &mut counter, senders, options, rows).await?;
        println!("load avg: {}", sys::load_average());
    }

    let before = CpuSnapshot::take(&watched);
    let mut latencies = load::paced(addr, 4, 1000.0, options.paced, "lat").await?;
    let paced_cpu = before.per_message(&CpuSnapshot::take(&watched), latencies.len() as u64);
    let n = latencies.len();
    let p50 = quantile(&mut latencies, 0.50).map(ms);
    let p99 = quantile(&mut latencies, 0.99).map(ms);
    let max = quantile(&mut latencies, 1.0).map(ms);
    let note = format!(
        "{n} msgs, 4 senders, open loop; max {:.2} ms",
        max.unwrap_or_default()
    );
    rows.push(Row::new(
        "ACK latency p50 @ 1,000 msg/s",
        "ms",
        Goal::None,
        p50,
        &note,
    ));
    rows.push(Row::new(
        "ACK latency p99 @ 1,000 msg/s",
        "ms",
        Goal::AtMost(2.0),
        p99,
        &note,
    ));
    rows.push(Row::new(
        "ACK latency floor: one fdatasync (p50)",
        "ms",
        Goal::None,
        Some(ms(disk.median)),
        &format!(
            "every ACK waits for a commit; fdatasync p99 {:.2} ms",
            ms(disk.p99)
        ),
    ));
    rows.push(cpu_row("CPU per message, paced", &paced_cpu));
    print_writer_log(&agent.log());

    let loaded = sys::rss(pid).ok_or("agent gone")?;
    rows.push(Row::new(
        "RSS peak under load (VmHWM)",
        "MB",
        Goal::AtMost(40.0),
        Some(mb(loaded.peak_kib)),
        &format!("VmRSS now {:.1} MB", mb(loaded.current_kib)),
    ));
    if let Some(receipts) = receipts {
        let status = agent.status_json()?;
        rows.push(Row::new(
            "receipts sent by the stand-in hub",
            "",
            Goal::None,
            Some(receipts.receipts() as f64),
            &format!(
                "awaiting receipt at the end: {}",
                status["hub"]["awaiting_receipt"]
            ),
        ));
    }
    Ok(())
}

/// Times synchronous 4 KiB overwrites next to the agent's database and adds their row.
async fn disk_latency(
    database: &std::path::Path,
    rows: &mut Vec<Row>,
) -> Result<SyncLatency, BoxError> {
    let dir = database
        .parent()
        .ok_or("database path has no directory")?
        .to_owned();
    let disk = tokio::task::spawn_blocking(move || disk::probe(&dir, DISK_SAMPLES)).await??;
    println!(
        "disk    : 4 KiB overwrite + fdatasync in the data directory: median {:.2} ms, p99 {:.2} ms ({} samples)",
        ms(disk.median),
        ms(disk.p99),
        disk.samples
    );
    rows.push(Row::new(
        "fdatasync, 4 KiB overwrite in data dir (p50)",
        "ms",
        Goal::None,
        Some(ms(disk.median)),
        &format!("p99 {:.2} ms; {} samples", ms(disk.p99), disk.samples),
    ));
    Ok(disk)
}

/// Prints the store writer's periodic figures from the agent log (present when the agent runs
/// with `RUST_LOG=hl7edge::store=debug`).
fn print_writer_log(log: &str) {
    for line in log.lines().filter(|l| l.contains("store writer ")) {
        println!("writer  : {line}");
    }
}

/// What a live throughput phase runs against.
struct Live<'a> {
    subscriber: &'a Subscriber,
    addr: std::net::SocketAddr,
    watched: &'a [(&'static str, Option<u32>)],
    disk: SyncLatency,
}

async fn throughput(
    live: &Live<'_>,
    counter: &mut RecordCount,
    senders: usize,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), BoxError> {
    let subscriber = live.subscriber;
    counter.update(subscriber);
    let before = counter.records();
    let load = ClosedLoop::start(live.addr, senders, &format!("s{senders}x"));
    tokio::time::sleep(options.warmup).await;
    let (t0, a0, m0) = (Instant::now(), load.acked(), subscriber.count());
    let cpu0 = CpuSnapshot::take(live.watched);
    tokio::time::sleep(options.measure).await;
    let (t1, a1, m1) = (Instant::now(), load.acked(), subscriber.count());
    let cpu = cpu0.per_message(&CpuSnapshot::take(live.watched), a1 - a0);
    let total = load.stop().await?;
    let window = (t1 - t0).as_secs_f64();
    let ack_rate = (a1 - a0) as f64 / window;
    let arrived = RecordCount::records_in(subscriber, m0..m1) as f64 / window;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        counter.update(subscriber);
        if counter.records() - before >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = counter.records() - before;
    let missing = total.saturating_sub(delivered);
    let note = format!(
        "{window:.1} s window; {total} ACKed, {delivered} delivered, {missing} missing, {} dup",
        counter.duplicates()
    );
    rows.push(Row::new(
        &format!("ACK rate, {senders} closed-loop senders"),
        "msg/s",
        Goal::AtLeast(20_000.0),
        Some(ack_rate),
        &note,
    ));
    rows.push(Row::new(
        &format!("records at subscriber, {senders} senders"),
        "rec/s",
        Goal::AtLeast(20_000.0),
        Some(arrived),
        if missing == 0 {
            "nothing missing"
        } else {
            "RECORDS MISSING"
        },
    ));
    rows.push(Row::new(
        &format!("disk ceiling, {senders} senders (senders/fdatasync)"),
        "msg/s",
        Goal::None,
        live.disk.ceiling(senders),
        "a commit per fdatasync p50, one message per sender in each",
    ));
    rows.push(cpu_row(
        &format!("CPU per message, {senders} senders"),
        &cpu,
    ));
    Ok(())
}

/// The agent's CPU time per message as the value, the other processes' in the note.
fn cpu_row(name: &str, per_message: &[(&'static str, f64)]) -> Row {
    let agent = per_message
        .iter()
        .find(|(process, _)| *process == "agent")
        .map(|(_, us)| *us);
    Row::new(
        name,
        "µs",
        Goal::None,
        agent,
        &format!("user+system CPU: {}", cpu::describe(per_message)),
    )
}

async fn backlog_phase(
    binary: &std::path::Path,
    pki: &Pki,
    options: &Options,
    rows: &mut Vec<Row>,
) -> Result<(), BoxError> {
    let n = options.backlog;
    let mut broker = Broker::start(pki).await?;
    broker.stop().await?;
    let mut agent = Agent::start_binary(binary, &agent_config(pki, &broker.url(), options)).await?;
    agent.sigterm()?;
    agent.wait_exit(Duration::from_secs(30)).await?;

    println!("backlog: prefilling {n} records through the agent's ingest + store (not MLLP)...");
    let started = Instant::now();
    prefill(&agent.database_path(), "lab", "backlog", n, MAX_BYTES).await?;
    let fill = started.elapsed().as_secs_f64();
    println!(
        "backlog: prefilled in {fill:.1} s ({:.0} rec/s); load avg {}",
        n as f64 / fill,
        sys::load_average()
    );

    broker.restart().await?;
    let hub = ClientOptions::new("bench-drain", &pki.ca, Some(&pki.subscriber));
    let subscriber = Subscriber::connect(broker.addr(), &hub, "hl7edge/v1/#").await?;
    let receipts = receipter(&broker, pki, options, "bench-drain-receipts").await?;
    let started = Instant::now();
    agent.restart().await?;
    let restart = started.elapsed();
    let pid = agent.pid().ok_or("agent not running")?;
    let cpu_at_start = sys::cpu_time(pid).unwrap_or_default();

    let mut counter = RecordCount::new();
    let deadline = Instant::now() + Duration::from_secs(120 + n / 2_000);
    let mut peak = 0;
    while counter.records() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        counter.update(&subscriber);
        peak = sys::rss(pid).map_or(peak, |r| r.peak_kib);
    }
    let drain = started.elapsed().as_secs_f64();
    let got = counter.records();
    let cpu_us = |at: Duration| at.saturating_sub(cpu_at_start).as_secs_f64() * 1e6 / n as f64;
    let note = format!(
        "{got}/{n} records in {drain:.1} s from restart, {} dup; prefilled via store; agent CPU {:.1} µs/record",
        counter.duplicates(),
        cpu_us(sys::cpu_time(pid).unwrap_or_default())
    );
    rows.push(Row::new(
        "restart until MLLP accepts (backlog queued)",
        "ms",
        Goal::AtMost(1000.0),
        Some(ms(restart)),
        &format!("{n} queued; 20 ms poll"),
    ));
    rows.push(Row::new(
        "backlog drain rate to subscriber",
        "rec/s",
        Goal::AtLeast(50_000.0),
        Some(got as f64 / drain),
        &note,
    ));
    if receipts.is_some() {
        // Receipt mode deletes at the receipt: the drain is done when nothing awaits one.
        let deadline = Instant::now() + Duration::from_secs(120 + n / 2_000);
        let mut awaiting = u64::MAX;
        while Instant::now() < deadline {
            let status = agent.status_json()?;
            awaiting = status["hub"]["awaiting_receipt"]
                .as_u64()
                .unwrap_or(u64::MAX);
            let depth = status["queue"]["depth"].as_u64().unwrap_or(u64::MAX);
            peak = sys::rss(pid).map_or(peak, |r| r.peak_kib);
            if awaiting == 0 && depth == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let receipted = started.elapsed().as_secs_f64();
        rows.push(Row::new(
            "backlog drain until every record is receipted",
            "rec/s",
            Goal::AtLeast(50_000.0),
            Some(n as f64 / receipted),
            &format!(
                "{n} in {receipted:.1} s from restart; {awaiting} awaiting at the end; agent CPU {:.1} µs/record",
                cpu_us(sys::cpu_time(pid).unwrap_or_default())
            ),
        ));
    }
    rows.push(Row::new(
        "RSS peak while draining (VmHWM)",
        "MB",
        Goal::AtMost(40.0),
        Some(mb(peak)),
        "",
    ));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
