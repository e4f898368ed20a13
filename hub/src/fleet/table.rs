//! The fleet as text for people: a summary line, an aligned table with one
//! gateway per line (`-` for unknown), then every alert in words.

use super::row::{Liveness, Row};
use crate::human;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

const COLUMNS: [(&str, Align); 10] = [
    ("GATEWAY", Align::Left),
    ("STATE", Align::Left),
    ("LAST SEEN", Align::Left),
    ("VERSION", Align::Left),
    ("BACKLOG", Align::Right),
    ("OLDEST", Align::Right),
    ("FAILING", Align::Left),
    ("UNMAPPED", Align::Right),
    ("CERT", Align::Right),
    ("ALERTS", Align::Right),
];

/// Renders the whole view. `connection` describes the broker link
/// (`connected to mqtts://hub:8883`).
pub fn render(rows: &[Row], connection: &str, now_ms: i64) -> String {
    let mut out = summary(rows, connection, now_ms);
    out.push('\n');
    if rows.is_empty() {
        out.push_str("\nno gateways seen yet: waiting for their retained status and heartbeats\n");
        return out;
    }
    out.push('\n');
    let cells: Vec<Vec<String>> = rows.iter().map(|r| cells(r, now_ms)).collect();
    out.push_str(&table(&cells));
    let alerts: Vec<(String, String)> = rows
        .iter()
        .flat_map(|r| r.alerts.iter().map(|a| (r.key.to_string(), a.to_string())))
        .collect();
    if !alerts.is_empty() {
        let width = alerts
            .iter()
            .map(|(g, _)| g.chars().count())
            .max()
            .unwrap_or(0);
        out.push_str("\nALERTS\n");
        for (gateway, alert) in alerts {
            out.push_str(&format!("  {gateway:<width$}  {alert}\n"));
        }
    }
    out
}

fn summary(rows: &[Row], connection: &str, now_ms: i64) -> String {
    let count = |s: Liveness| rows.iter().filter(|r| r.state == s).count();
    let alerts: usize = rows.iter().map(|r| r.alerts.len()).sum();
    let mut parts = vec![
        format!("{} gateways", rows.len()),
        format!("{} online", count(Liveness::Online)),
        format!("{} offline", count(Liveness::Offline)),
    ];
    let unknown = count(Liveness::Unknown);
    if unknown > 0 {
        parts.push(format!("{unknown} unknown"));
    }
    parts.push(format!(
        "{alerts} alert{}",
        if alerts == 1 { "" } else { "s" }
    ));
    format!(
        "hl7edge fleet  {}  |  {}  |  {}",
        parts.join(", "),
        connection,
        human::utc(now_ms)
    )
}

fn cells(r: &Row, now_ms: i64) -> Vec<String> {
    let dash = || "-".to_string();
    let state = match r.state {
        Liveness::Online => "online",
        Liveness::Offline => "offline",
        Liveness::Unknown => "unknown",
    };
    vec![
        r.key.to_string(),
        state.to_string(),
        r.last_seen_ms.map_or_else(dash, |t| human::ago(now_ms, t)),
        r.version.clone().unwrap_or_else(dash),
        r.queue_depth.map_or_else(dash, |d| d.to_string()),
        r.oldest_unsent_ms
            .map_or_else(dash, |ms| human::duration(ms / 1000)),
        if r.failing_sources.is_empty() {
            dash()
        } else {
            r.failing_sources.join(",")
        },
        r.unmapped_ratio.map_or_else(dash, human::percent),
        r.cert_days_left.map_or_else(dash, |d| format!("{d}d")),
        if r.alerts.is_empty() {
            dash()
        } else {
            r.alerts.len().to_string()
        },
    ]
}

fn table(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = COLUMNS.iter().map(|(h, _)| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = COLUMNS.iter().map(|(h, _)| (*h).to_string()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| line(row, &widths))
        .collect()
}

fn line(row: &[String], widths: &[usize]) -> String {
    let parts: Vec<String> = row
        .iter()
        .zip(widths)
        .zip(COLUMNS.iter())
        .map(|((cell, w), (_, align))| match align {
            Align::Left => format!("{cell:<w$}"),
            Align::Right => format!("{cell:>w$}"),
        })
        .collect();
    let mut text = parts.join("  ").trim_end().to_string();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::{heartbeat, status};
    use crate::fleet::{Fleet, FleetConfig};

    #[test]
    fn columns_line_up_and_unknowns_are_dashes() {
        let mut fleet = Fleet::new(FleetConfig::default());
        let t = "hl7edge/v1/acme/clinic-12/gw-0001";
        fleet
            .apply(&format!("{t}/status"), &status(true), false, 1_000)
            .unwrap();
        fleet
            .apply(
                "hl7edge/v1/acme/c2/gw-2/status",
                &status(false),
                true,
                1_000,
            )
            .unwrap();
        fleet
            .apply(&format!("{t}/telemetry"), &heartbeat(|_| {}), false, 2_000)
            .unwrap();
        let text = render(&fleet.rows(5_000), "connected to mqtt://x:1883", 5_000);
        let line = |needle: &str| text.lines().find(|l| l.starts_with(needle)).unwrap();
        let (online, offline) = (line("acme/clinic-12/gw-0001"), line("acme/c2/gw-2"));
        let header = line("GATEWAY");
        assert_eq!(online.find("online"), header.find("STATE"), "{text}");
        assert_eq!(offline.find("offline"), header.find("STATE"), "{text}");
        assert_eq!(
            online.len(),
            header.len(),
            "right-aligned last column:\n{text}"
        );
        assert!(
            offline.contains("offline  -"),
            "unknowns are dashes:\n{text}"
        );
        assert!(online.contains("3s ago"), "{text}");
        assert!(
            text.contains("2 gateways, 1 online, 1 offline, 1 alert"),
            "{text}"
        );
        assert!(
            text.contains("ALERTS\n  acme/c2/gw-2  offline (connection lost)"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_fleet_says_what_it_waits_for() {
        let text = render(&[], "connecting", 0);
        assert!(text.contains("no gateways seen yet"));
    }
}
