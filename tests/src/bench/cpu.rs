//! CPU time per message of each process on the data path (agent, broker, and this benchmark
//! process with its senders and subscriber), over a measurement window. Unlike a wall-clock
//! rate, CPU time per message hardly moves when other work shares the machine, so it is the
//! figure to compare two builds by.
//!
//! Invariant: a process that is gone at either end of the window is left out, never counted as
//! zero.

use std::fmt::Write as _;
use std::time::Duration;

use super::sys;

/// CPU time of the watched processes at one instant.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    taken: Vec<(&'static str, Option<Duration>)>,
}

impl CpuSnapshot {
    /// Reads the CPU time of every `(name, pid)`; a missing pid or a gone process reads `None`.
    pub fn take(processes: &[(&'static str, Option<u32>)]) -> CpuSnapshot {
        let taken = processes
            .iter()
            .map(|(name, pid)| (*name, pid.and_then(sys::cpu_time)))
            .collect();
        CpuSnapshot { taken }
    }

    /// Microseconds of CPU per message for each process between `self` and `later`.
    pub fn per_message(&self, later: &CpuSnapshot, messages: u64) -> Vec<(&'static str, f64)> {
        if messages == 0 {
            return Vec::new();
        }
        self.taken
            .iter()
            .zip(&later.taken)
            .filter_map(|((name, before), (_, after))| {
                let used = after.as_ref()?.checked_sub(*before.as_ref()?)?;
                Some((*name, used.as_secs_f64() * 1e6 / messages as f64))
            })
            .collect()
    }
}

/// `agent 310 µs, broker 95 µs` for a table note.
pub fn describe(per_message: &[(&'static str, f64)]) -> String {
    let mut out = String::new();
    for (i, (name, us)) in per_message.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(out, "{sep}{name} {us:.0} µs");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_message_divides_the_time_used_and_skips_gone_processes() {
        let before = CpuSnapshot {
            taken: vec![
                ("agent", Some(Duration::from_millis(100))),
                ("broker", None),
            ],
        };
        let after = CpuSnapshot {
            taken: vec![
                ("agent", Some(Duration::from_millis(400))),
                ("broker", Some(Duration::from_millis(50))),
            ],
        };
        let per = before.per_message(&after, 1000);
        assert_eq!(per.len(), 1);
        assert_eq!(per.first().map(|p| p.0), Some("agent"));
        assert!((per.first().map_or(0.0, |p| p.1) - 300.0).abs() < 1e-9);
        assert_eq!(describe(&per), "agent 300 µs");
        assert!(before.per_message(&after, 0).is_empty());
    }

    #[test]
    fn this_process_can_be_watched() {
        let snapshot = CpuSnapshot::take(&[("bench", Some(std::process::id())), ("none", None)]);
        assert!(snapshot.taken.first().is_some_and(|t| t.1.is_some()));
        assert!(snapshot.taken.get(1).is_some_and(|t| t.1.is_none()));
    }
}
