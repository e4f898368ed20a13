//! Process signals: SIGTERM and SIGINT both mean "shut down cleanly".

/// Resolves on the first SIGTERM or SIGINT.
pub async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Signal handlers could not be installed: fall back to Ctrl-C.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
