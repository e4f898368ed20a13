//! `doctor` checks of the patient data held beside the queue: quarantine entries about to be
//! erased (or a full quarantine), and damaged databases set aside at start, with their size and
//! age. Read-only: a `query_only` reader and a directory listing, so a running agent is not
//! disturbed.

use std::path::Path;

use bytesize::ByteSize;
use jiff::Timestamp;

use super::check::Check;
use super::storage::DiskBudget;
use crate::config::Config;
use crate::store::set_aside::{self, SetAside};
use crate::store::{QuarantineOutlook, StoreReader};

/// The disk budget of `config`: both caps, and the set-aside databases found now.
pub fn budget(config: &Config) -> DiskBudget {
    DiskBudget {
        queue: config.storage.max_bytes,
        quarantine: config.quarantine.max_bytes,
        set_aside: set_aside::list(&config.storage.path).map_or(0, |f| set_aside::total_bytes(&f)),
    }
}

/// The quarantine and set-aside checks.
pub fn checks(config: &Config, now: Timestamp) -> Vec<Check> {
    let now_ms = now.as_millisecond();
    let db = &config.storage.path;
    let quarantine_check = if db.exists() {
        let limits = crate::daemon::quarantine_limits(config);
        match StoreReader::open(db).and_then(|r| r.quarantine_outlook(now_ms, limits)) {
            Ok(outlook) => quarantine(&outlook, now_ms),
            Err(e) => Check::warn(
                QUARANTINE,
                format!("cannot read the quarantine in {}: {e}", db.display()),
                "run doctor as root or as the service user (sudo -u hl7edge hl7edge doctor)",
            ),
        }
    } else {
        Check::ok(QUARANTINE, "no database yet")
    };
    let set_aside_check = match set_aside::list(db) {
        Ok(found) => set_aside_databases(db, &found, now_ms),
        Err(e) => Check::warn(
            SET_ASIDE,
            format!("cannot list {}: {e}", db.parent().unwrap_or(db).display()),
            "run doctor as root or as the service user (sudo -u hl7edge hl7edge doctor)",
        ),
    };
    vec![quarantine_check, set_aside_check]
}

const QUARANTINE: &str = "quarantine";
const SET_ASIDE: &str = "set-aside databases";

/// The quarantine against its cap and retention: WARN when entries expire within the warning
/// period or a rejected message would be refused for the cap.
pub fn quarantine(o: &QuarantineOutlook, now_ms: i64) -> Check {
    let days = o.retention_ms / 86_400_000;
    let held = format!(
        "{} of quarantine.max_bytes {}, {} message(s), kept {days} days",
        ByteSize(o.bytes),
        ByteSize(o.max_bytes),
        o.held
    );
    let fix = "see them: hl7edge quarantine list; after fixing the cause: hl7edge quarantine \
               replay ID; only if one must never be sent: hl7edge quarantine drop ID";
    if o.expiring > 0 {
        let next = o.next_expiry_ms.map_or_else(String::new, |at| {
            let when =
                Timestamp::from_millisecond(at).map_or_else(|_| at.to_string(), |t| t.to_string());
            let left = if at <= now_ms {
                "due now".to_owned()
            } else {
                format!("in {}", days_hours(at - now_ms))
            };
            format!("; the first at {when} ({left})")
        });
        return Check::warn(
            QUARANTINE,
            format!(
                "{} rejected message(s) will be erased, never sent, within {} (quarantine.retention){next}; {held}",
                o.expiring,
                days_hours(o.warn_ms)
            ),
            fix,
        );
    }
    if o.nearly_full() {
        return Check::warn(
            QUARANTINE,
            format!(
                "(nearly) full: {held}; rejected messages that do not fit are refused (AR) until entries are replayed, dropped or expire"
            ),
            format!("{fix}; or raise quarantine.max_bytes"),
        );
    }
    Check::ok(QUARANTINE, held)
}

/// Damaged databases set aside beside `db`: WARN with their size and age while any is there.
pub fn set_aside_databases(db: &Path, found: &[SetAside], now_ms: i64) -> Check {
    let Some(oldest) = found.first() else {
        return Check::ok(SET_ASIDE, format!("none beside {}", db.display()));
    };
    let names: Vec<String> = found
        .iter()
        .map(|s| format!("{} ({})", s.path.display(), ByteSize(s.bytes)))
        .collect();
    Check::warn(
        SET_ASIDE,
        format!(
            "{} damaged database(s) set aside, {} in all, the oldest {} ago; they hold patient data and count against the disk the store needs: {}",
            found.len(),
            ByteSize(set_aside::total_bytes(found)),
            days_hours(now_ms.saturating_sub(oldest.set_aside_at_ms)),
            names.join(", ")
        ),
        "recover what you need from them (sqlite3 FILE), then erase them: hl7edge storage purge-set-aside",
    )
}

/// `3d 4h`, `5h`, `0h` for a span in ms.
fn days_hours(ms: i64) -> String {
    let hours = ms.max(0) / 3_600_000;
    match (hours / 24, hours % 24) {
        (0, h) => format!("{h}h"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::check::Outcome;

    const DAY: i64 = 86_400_000;

    fn outlook(expiring: u64, bytes: u64) -> QuarantineOutlook {
        QuarantineOutlook {
            bytes,
            max_bytes: 1 << 20,
            held: 3,
            expiring,
            next_expiry_ms: Some(10 * DAY),
            retention_ms: 30 * DAY,
            warn_ms: 7 * DAY,
        }
    }

    #[test]
    fn entries_about_to_expire_warn_with_the_date_and_the_way_out() {
        let check = quarantine(&outlook(2, 1000), 5 * DAY);
        assert_eq!(check.outcome, Outcome::Warn);
        assert!(
            check
                .detail
                .starts_with("2 rejected message(s) will be erased, never sent, within 7d"),
            "{}",
            check.detail
        );
        assert!(check.detail.contains("(in 5d)"), "{}", check.detail);
        assert!(
            check.fix.contains("hl7edge quarantine replay ID"),
            "{}",
            check.fix
        );
        assert_eq!(quarantine(&outlook(0, 1000), 5 * DAY).outcome, Outcome::Ok);
        let full = quarantine(&outlook(0, 1 << 20), 5 * DAY);
        assert_eq!(full.outcome, Outcome::Warn);
        assert!(
            full.fix.contains("raise quarantine.max_bytes"),
            "{}",
            full.fix
        );
    }

    #[test]
    fn set_aside_databases_warn_with_size_and_age() {
        let db = Path::new("/var/lib/hl7edge/queue.db");
        assert_eq!(set_aside_databases(db, &[], 0).outcome, Outcome::Ok);
        let found = [SetAside {
            path: "/var/lib/hl7edge/queue.db.corrupt-1".into(),
            bytes: 3 << 20,
            set_aside_at_ms: DAY,
        }];
        let check = set_aside_databases(db, &found, 4 * DAY + 2 * 3_600_000);
        assert_eq!(check.outcome, Outcome::Warn);
        assert!(
            check.detail.starts_with(
                "1 damaged database(s) set aside, 3.0 MiB in all, the oldest 3d 2h ago"
            ),
            "{}",
            check.detail
        );
        assert!(check.fix.ends_with("hl7edge storage purge-set-aside"));
    }
}
