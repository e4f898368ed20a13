//! A stand-in for the `hl7edge` binary, used only by the harness's self-tests to prove the
//! process helper (start, readiness, signals, restart, log capture) and the MLLP sender without
//! depending on the agent's state. It is not a gateway: it stores nothing and forwards nothing.
//!
//! Usage: `standin-agent run --config FILE`. It binds every `[[listener]] bind` address in the
//! file and answers each MLLP frame with an original-mode AA that echoes the message's MSH-10.
//! SIGTERM ends it with the default action.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

use hl7edge_e2e::mllp::{END, START, frame};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
    else {
        eprintln!("usage: standin-agent run --config FILE");
        return ExitCode::from(2);
    };
    let binds = match read_binds(path) {
        Ok(binds) => binds,
        Err(err) => {
            eprintln!("standin-agent: {err}");
            return ExitCode::from(78);
        }
    };
    let mut threads = Vec::new();
    for bind in binds {
        let listener = match TcpListener::bind(&bind) {
            Ok(listener) => listener,
            Err(err) => {
                eprintln!("standin-agent: binding {bind}: {err}");
                return ExitCode::from(1);
            }
        };
        println!("standin-agent listening on {bind}");
        threads.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer(stream));
            }
        }));
    }
    // What the real agent logs once every listener is bound (the harness waits for it).
    println!("hl7edge started");
    for thread in threads {
        let _ = thread.join();
    }
    ExitCode::SUCCESS
}

fn read_binds(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
    let config: toml::Table = toml::from_str(&text).map_err(|err| format!("{path}: {err}"))?;
    let listeners = config
        .get("listener")
        .and_then(|l| l.as_array())
        .ok_or("no [[listener]]")?;
    listeners
        .iter()
        .map(|l| {
            l.get("bind")
                .and_then(|b| b.as_str())
                .map(str::to_owned)
                .ok_or_else(|| "listener without bind".to_owned())
        })
        .collect()
}

/// Answers every frame on one connection until it closes.
fn answer(mut stream: TcpStream) {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 8192];
    while let Ok(read @ 1..) = stream.read(&mut chunk) {
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
        while let Some(message) = take(&mut buffer) {
            let text = String::from_utf8_lossy(&message);
            let control_id = text.split('|').nth(9).unwrap_or_default();
            let ack = format!(
                "MSH|^~\\&|HL7EDGE|GW|||20250301000000||ACK|{control_id}-ack|P|2.5.1\rMSA|AA|{control_id}\r"
            );
            if stream.write_all(&frame(ack.as_bytes())).is_err() {
                return;
            }
        }
    }
}

fn take(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let start = buffer.iter().position(|&b| b == START)?;
    let end = buffer.windows(2).position(|w| w == END)?;
    let message = buffer.get(start + 1..end).map(<[u8]>::to_vec);
    buffer.drain(..end + END.len());
    message
}
