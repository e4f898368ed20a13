//! The `hl7edge-hub` command: a thin binary over the hub library.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use hl7edge_hub::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hl7edge-hub: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Fleet(args) => hl7edge_hub::fleet::command::run(args, interrupted()).await,
            Command::Tail(args) => hl7edge_hub::tail::run(args, interrupted()).await.map(drop),
            Command::Serve(args) => hl7edge_hub::serve::run(args, interrupted()).await,
            Command::Ingest(args) => hl7edge_hub::ingest::run(args, interrupted()).await,
            Command::Push(hl7edge_hub::cli::PushCommand::Mapping(args)) => {
                hl7edge_hub::push::mapping(args).await
            }
            Command::Enroll(args) => hl7edge_hub::enroll::run(args, interrupted()).await,
            Command::Push(hl7edge_hub::cli::PushCommand::Listener(args)) => {
                hl7edge_hub::push::listener(args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hl7edge-hub: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries the command's output). The fleet view
/// redraws the terminal, so it logs only warnings by default; `RUST_LOG`
/// overrides.
fn init_logging(command: &Command) {
    let default = match command {
        Command::Fleet(_) | Command::Push(_) => "warn",
        Command::Tail(_) | Command::Serve(_) | Command::Ingest(_) | Command::Enroll(_) => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
