//! Facts about the machine and a process, read from `/proc`: CPU count and model, load average,
//! and a process's resident memory (current and peak).

use std::path::PathBuf;

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rss {
    /// `VmRSS`: resident now.
    pub current_kib: u64,
    /// `VmHWM`: the peak resident size so far.
    pub peak_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of process `pid`; `None` if the process is gone.
pub fn rss(pid: u32) -> Option<Rss> {
    let status = std::fs::read_to_string(PathBuf::from(format!("/proc/{pid}/status"))).ok()?;
    parse_rss(&status)
}

fn parse_rss(status: &str) -> Option<Rss> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Rss {
        current_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Online CPUs as the benchmark sees them.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The CPU model from `/proc/cpuinfo` (`model name`, or `Model` on ARM boards).
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            matches!(key.trim(), "model name" | "Model").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1, 5 and 15 minute load averages as written in `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_and_peak_are_read_from_a_status_file() {
        let status = "Name:\thl7edge\nVmHWM:\t   12345 kB\nVmRSS:\t    8000 kB\n";
        assert_eq!(
            parse_rss(status),
            Some(Rss {
                current_kib: 8000,
                peak_kib: 12345
            })
        );
    }

    #[test]
    fn a_status_without_memory_lines_gives_none() {
        assert_eq!(parse_rss("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn the_running_process_has_a_resident_size() {
        let rss = rss(std::process::id()).unwrap();
        assert!(rss.current_kib > 0 && rss.peak_kib >= rss.current_kib);
    }
}
