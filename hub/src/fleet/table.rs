//! The fleet as text for people: a summary, an aligned table with one gateway per line (`-`
//! for unknown), then every alert in words, under its gateway, then every push a gateway did
//! not apply (rejected, rolled back, failed: any outcome but `applied` and `restored`) and
//! every replay that left messages in quarantine, under its gateway.
//!
//! Invariant: with gateway names up to 29 characters (`acme-health/clinic-12/gw-0001`) every
//! line fits 80 columns; alert texts are wrapped to 80 columns. The columns are documented in
//! the README ("The hub: fleet view and metrics"); the rest is in `--json` and the metrics.

use hl7edge_protocol::telemetry::PushReport;

use super::row::Row;
use crate::human;

/// The width the view keeps to.
pub const WIDTH: usize = 80;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

const COLUMNS: [(&str, Align); 7] = [
    ("GATEWAY", Align::Left),
    ("STATE", Align::Left),
    ("SEEN", Align::Left),
    ("QUEUE", Align::Right),
    ("OLDEST", Align::Right),
    ("UNMAP", Align::Right),
    ("ALERTS", Align::Right),
];

/// Renders the whole view. `connection` describes the broker link
/// (`connected to mqtts://hub:8883`).
pub fn render(rows: &[Row], connection: &str, now_ms: i64) -> String {
    let mut out = summary(rows, connection, now_ms);
    if rows.is_empty() {
        out.push_str("\nno gateways seen yet: waiting for their retained status and heartbeats\n");
        return out;
    }
    out.push('\n');
    let cells: Vec<Vec<String>> = rows.iter().map(|r| cells(r, now_ms)).collect();
    out.push_str(&table(&cells));
    let with_alerts: Vec<&Row> = rows.iter().filter(|r| !r.alerts.is_empty()).collect();
    if !with_alerts.is_empty() {
        out.push_str("\nALERTS\n");
        for row in with_alerts {
            out.push_str(&format!("  {}\n", row.key));
            for alert in &row.alerts {
                out.push_str(&human::wrap(&alert.to_string(), WIDTH, "    - ", "      "));
            }
        }
    }
    out.push_str(&pushes(rows, now_ms));
    out.push_str(&switched_off(rows));
    out
}

/// The `SWITCHED OFF` section: the listeners a push switched off, under their gateway (on
/// purpose, so not an alert, but a feed nobody should wait for); empty when none is.
fn switched_off(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        let names: Vec<&str> = row
            .listeners
            .iter()
            .filter(|l| l.disabled)
            .map(|l| l.stats.name.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str("\nSWITCHED OFF BY A PUSH (refusing connections on purpose)\n");
        }
        out.push_str(&format!("  {}: {}\n", row.key, names.join(", ")));
    }
    out
}

/// The `PUSHES` section: a line per push report worth a look, under its gateway; empty when
/// every push was applied.
fn pushes(rows: &[Row], now_ms: i64) -> String {
    let mut out = String::new();
    for row in rows {
        let lines: Vec<String> = row
            .pushes
            .iter()
            .filter(|p| worth_a_look(p))
            .map(|p| push_line(p, now_ms))
            .collect();
        if lines.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str("\nPUSHES NOT APPLIED\n");
        }
        out.push_str(&format!("  {}\n", row.key));
        for line in lines {
            out.push_str(&human::wrap(&line, WIDTH, "    - ", "      "));
        }
    }
    out
}

/// Not applied, or a replay that left entries in quarantine.
fn worth_a_look(p: &PushReport) -> bool {
    let applied = matches!(p.outcome.as_str(), "applied" | "restored");
    !applied || p.replay.is_some_and(|r| r.still_quarantined > 0)
}

/// `lab: rejected (bad_signature), sequence 20, 3m ago` (`replay` for a replay push, with its
/// counts).
fn push_line(p: &PushReport, now_ms: i64) -> String {
    let what = match (p.change.as_str(), p.listener.as_str()) {
        ("replay", "") => "replay".to_owned(),
        ("replay", l) => format!("replay of {l}"),
        (_, "") => "a push".to_owned(),
        (_, l) => l.to_owned(),
    };
    let mut line = format!("{what}: {}", p.outcome.replace('_', " "));
    if let Some(reason) = &p.reason {
        line.push_str(&format!(" ({reason})"));
    }
    if let Some(seq) = p.sequence {
        line.push_str(&format!(", sequence {seq}"));
    }
    if let Some(r) = p.replay {
        line.push_str(&format!(
            ", {} replayed, {} still quarantined",
            r.replayed, r.still_quarantined
        ));
    }
    line.push_str(&format!(", {}", human::short_ago(now_ms, p.at_ms)));
    line
}

fn summary(rows: &[Row], connection: &str, now_ms: i64) -> String {
    use super::row::Liveness;
    let count = |s: Liveness| rows.iter().filter(|r| r.state == s).count();
    let alerts: usize = rows.iter().map(|r| r.alerts.len()).sum();
    let mut parts = vec![
        format!("{} online", count(Liveness::Online)),
        format!("{} late", count(Liveness::Late)),
        format!("{} offline", count(Liveness::Offline)),
    ];
    let unknown = count(Liveness::Unknown);
    if unknown > 0 {
        parts.push(format!("{unknown} unknown"));
    }
    let head = format!("hl7edge fleet, {}, {connection}", human::utc(now_ms));
    let counts = format!(
        "{} gateway{}: {}; {alerts} alert{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        parts.join(", "),
        if alerts == 1 { "" } else { "s" }
    );
    format!("{head}\n{counts}\n")
}

fn cells(r: &Row, now_ms: i64) -> Vec<String> {
    let dash = || "-".to_string();
    vec![
        r.key.to_string(),
        r.state.as_str().to_string(),
        r.last_seen_ms
            .map_or_else(dash, |t| human::short_ago(now_ms, t)),
        r.queue_depth.map_or_else(dash, |d| d.to_string()),
        r.oldest_unsent_ms
            .map_or_else(dash, |ms| human::short_duration(ms / 1000)),
        r.unmapped_ratio.map_or_else(dash, percent),
        if r.alerts.is_empty() {
            dash()
        } else {
            r.alerts.len().to_string()
        },
    ]
}

/// A ratio as a whole percentage, `<1%` for a small non-zero share.
fn percent(ratio: f64) -> String {
    match ratio * 100.0 {
        p if p > 0.0 && p < 1.0 => "<1%".to_owned(),
        p => format!("{p:.0}%"),
    }
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
            text.contains("2 gateways: 1 online, 0 late, 1 offline; 1 alert"),
            "{text}"
        );
        assert!(
            text.contains("ALERTS\n  acme/c2/gw-2\n    - offline (connection lost)"),
            "{text}"
        );
    }

    #[test]
    fn a_fleet_of_long_names_and_long_alerts_fits_eighty_columns() {
        let mut fleet = Fleet::new(FleetConfig::default());
        for id in ["gw-0001", "gw-0002"] {
            let t = format!("hl7edge/v1/acme-health/clinic-12/{id}");
            fleet
                .apply(&format!("{t}/status"), &status(true), false, 0)
                .unwrap();
            let payload = heartbeat(|hb| {
                hb.gateway.org = "acme-health".into();
                hb.gateway.id = id.into();
                hb.queue.depth = 12_345;
                hb.queue.oldest_unsent_age_ms = Some(20 * 3_600_000);
                hb.storage.recovery = Some(
                    "queue.db was damaged (quick_check failed); moved to /var/lib/hl7edge/queue.db.corrupt-1795000000000"
                        .into(),
                );
                if let Some(s) = hb.sources.first_mut() {
                    s.drift =
                        vec!["unit of observation 2345-7 changed from mg/dL to mmol/L".into()];
                }
            });
            fleet
                .apply(&format!("{t}/telemetry"), &payload, false, 0)
                .unwrap();
        }
        let now = 1_000 * 3600;
        let text = render(&fleet.rows(now), "connected to mqtts://hub:8883", now);
        for line in text.lines() {
            assert!(
                line.chars().count() <= WIDTH,
                "{} columns: {line}\n{text}",
                line.chars().count()
            );
        }
        assert!(text.contains("late"), "{text}");
    }

    #[test]
    fn pushes_a_gateway_did_not_apply_are_listed_under_it_whatever_their_outcome() {
        let mut fleet = Fleet::new(FleetConfig::default());
        let t = "hl7edge/v1/acme/clinic-12/gw-0001";
        fleet
            .apply(&format!("{t}/status"), &status(true), false, 1_000)
            .unwrap();
        let report =
            |listener: &str, change: &str, outcome: &str, reason: Option<&str>| PushReport {
                listener: listener.into(),
                sequence: Some(20),
                outcome: outcome.into(),
                reason: reason.map(Into::into),
                at_ms: 1_000,
                mapping_version: String::new(),
                change: change.into(),
                config_hash: String::new(),
                disabled: false,
                replay: None,
            };
        let payload = heartbeat(|hb| {
            hb.pushes = vec![
                report("lab", "mapping", "rejected", Some("bad_signature")),
                report("adt", "listener", "rolled_back", Some("bind_failed")),
                report("pharmacy", "mapping", "applied", None),
                hl7edge_protocol::telemetry::PushReport {
                    replay: Some(hl7edge_protocol::telemetry::ReplayCounts {
                        replayed: 3,
                        still_quarantined: 1,
                    }),
                    ..report("", "replay", "applied", None)
                },
            ];
        });
        fleet
            .apply(&format!("{t}/telemetry"), &payload, false, 2_000)
            .unwrap();
        let text = render(&fleet.rows(5_000), "connected", 5_000);
        assert!(
            text.contains(
                "PUSHES NOT APPLIED\n  acme/clinic-12/gw-0001\n    - lab: rejected (bad_signature), sequence 20, 4s ago\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("    - adt: rolled back (bind_failed), sequence 20"),
            "{text}"
        );
        assert!(
            text.contains("    - replay: applied, sequence 20, 3 replayed, 1 still quarantined"),
            "{text}"
        );
        assert!(!text.contains("pharmacy"), "{text}");
    }

    #[test]
    fn an_empty_fleet_says_what_it_waits_for() {
        let text = render(&[], "connecting", 0);
        assert!(text.contains("no gateways seen yet"));
    }
}
