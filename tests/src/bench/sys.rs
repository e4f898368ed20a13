//! Facts about the machine and a process, read from `/proc`: CPU count and model, load average,
//! a process's resident memory (current and peak) and the CPU time it used.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, 100 on every Linux ABI).
const USER_HZ: u64 = 100;

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

/// CPU time (user + system, all threads) process `pid` used so far; `None` if it is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_time(&stat)
}

fn parse_cpu_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted after
    // its last ')'. There, field 3 (state) comes first, so utime (14) and stime (15) are the
    // 12th and 13th.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// CPU time of process `pid` and all its children: its own, that of the children it has
/// reaped (`cutime`, `cstime`) and that of its live children (one level down: how PostgreSQL's
/// postmaster runs its backends and workers). `None` if `pid` is gone.
pub fn tree_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut total = parse_cpu_time(&stat)? + parse_reaped_cpu_time(&stat)?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let is_process = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok());
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if is_process && parse_parent(&stat) == Some(pid) {
            total += parse_cpu_time(&stat).unwrap_or_default();
        }
    }
    Some(total)
}

fn parse_parent(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn parse_reaped_cpu_time(stat: &str) -> Option<Duration> {
    // cutime (16) and cstime (17): the 14th and 15th fields after the command name.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(13);
    let cutime: u64 = fields.next()?.parse().ok()?;
    let cstime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((cutime + cstime) * 1000 / USER_HZ))
}

/// The first process whose command line has `arg` as one of its arguments (how the broker,
/// started with `-c <its config file>`, is found).
pub fn pid_with_arg(arg: &Path) -> Option<u32> {
    let wanted = arg.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|a| a == wanted)
                .then_some(pid)
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
    fn cpu_time_is_user_plus_system_ticks_counted_after_the_command_name() {
        let stat = "42 (tokio (rt) x) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_millis(3000)));
        assert_eq!(parse_cpu_time("42 (short) S 1"), None);
    }

    #[test]
    fn the_parent_and_the_reaped_children_cpu_are_read_after_the_command_name() {
        let stat = "42 (post (gres)) S 7 42 42 0 -1 4194560 100 0 0 0 250 50 300 100 20 0 9 0";
        assert_eq!(parse_parent(stat), Some(7));
        assert_eq!(
            parse_reaped_cpu_time(stat),
            Some(Duration::from_millis(4000))
        );
    }

    #[test]
    fn a_process_tree_includes_the_process_itself() {
        let me = std::process::id();
        // Own time first: the tree's, read later, includes at least as much.
        let own = cpu_time(me).unwrap();
        assert!(tree_cpu_time(me).unwrap() >= own);
    }

    #[test]
    fn this_process_is_found_by_its_own_argument_and_has_used_cpu() {
        let exe = std::env::args().next().unwrap();
        assert!(pid_with_arg(Path::new(&exe)).is_some());
        assert!(cpu_time(std::process::id()).is_some());
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
