//! The demo's MQTT broker: rumqttd, in this process, plain MQTT 3.1.1 on
//! a free 127.0.0.1 port.
//!
//! Only the demo uses it (cargo feature `demo`); the appliance build does
//! not contain a broker. It speaks plain TCP because the demo has no
//! certificates; a real gateway refuses anything but `mqtts://` unless
//! `insecure_plaintext` is set. rumqttd runs its own threads and has no
//! stop call: the broker lives until the process ends.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::DemoError;

/// Largest MQTT payload the broker accepts (the agent batches records).
const MAX_PAYLOAD: usize = 4 << 20;

/// Starts the broker and returns the address it listens on.
///
/// The port is found by binding port 0 and releasing it just before the
/// broker binds it; the hub subscriber's connection (which retries briefly)
/// confirms the broker is up.
pub(super) fn start() -> Result<SocketAddr, DemoError> {
    let addr = free_port().map_err(DemoError::Broker)?;
    let mut broker = Broker::new(config(addr));
    std::thread::Builder::new()
        .name("demo-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(cause = %e, "the demo MQTT broker stopped");
            }
        })
        .map_err(DemoError::Broker)?;
    Ok(addr)
}

fn free_port() -> std::io::Result<SocketAddr> {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    probe.local_addr()
}

fn config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "demo-mqtt".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: MAX_PAYLOAD,
            max_inflight_count: 256,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 16,
            max_outgoing_packet_count: 256,
            max_segment_size: 16 << 20,
            max_segment_count: 4,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    }
}
