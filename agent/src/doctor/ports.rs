//! `doctor` listener checks: each listener's address can be bound, or is already held by the
//! running hl7edge agent. A port held by any other program is a failure.
//!
//! Who holds a port is found the way `ss -ltnp` finds it on Linux: the listening socket's inode
//! in `/proc/net/tcp{,6}`, then the process whose file descriptors include that socket. Without
//! the rights to see other processes (not root) the holder stays unknown and the check says how
//! to look it up.

use std::io;
use std::net::TcpListener;
use std::path::Path;

use crate::config::Listener;

use super::check::Check;

/// The process name of the agent, as the kernel reports it (`/proc/PID/comm`).
const AGENT_COMM: &str = "hl7edge";

/// A process holding a listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Process name (`/proc/PID/comm`).
    pub name: String,
}

/// Checks every listener's bind address.
pub fn checks(listeners: &[Listener]) -> Vec<Check> {
    listeners
        .iter()
        .enumerate()
        .map(|(i, listener)| {
            let bound = TcpListener::bind(listener.bind).map(drop);
            let holder = match &bound {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => holder(listener.bind.port()),
                _ => None,
            };
            judge(i, listener, bound.as_ref().map(|_| ()), holder)
        })
        .collect()
}

/// The verdict for listener `index` given the bind result and, when the port was in use, who
/// holds it.
pub fn judge(
    index: usize,
    listener: &Listener,
    bound: Result<(), &io::Error>,
    holder: Option<Holder>,
) -> Check {
    let name = format!("listener {}", listener.name);
    let addr = listener.bind;
    let port = addr.port();
    let key = format!("listener[{index}].bind");
    match bound {
        Ok(()) => Check::ok(name, format!("{addr} is free for the agent to listen on")),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => match holder {
            Some(h) if h.name == AGENT_COMM => Check::ok(
                name,
                format!(
                    "{addr} is held by the running hl7edge agent (pid {})",
                    h.pid
                ),
            ),
            Some(h) => Check::fail(
                name,
                format!(
                    "{addr} is taken by another program: {} (pid {})",
                    h.name, h.pid
                ),
                format!(
                    "stop {} (pid {}), or choose another port in {key}",
                    h.name, h.pid
                ),
            ),
            None => Check::fail(
                name,
                format!("{addr} is taken by another program"),
                format!(
                    "find it with: ss -ltnp 'sport = :{port}'; stop it, or choose another port in {key}"
                ),
            ),
        },
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Check::fail(
            name,
            format!("not allowed to listen on {addr}: {e}"),
            format!(
                "run the agent as root (or with CAP_NET_BIND_SERVICE), or use a port from 1024 up in {key}"
            ),
        ),
        Err(e) => Check::fail(
            name,
            format!("cannot listen on {addr}: {e}"),
            format!("use 0.0.0.0 or an address this box has (ip addr) in {key}"),
        ),
    }
}

/// The process listening on TCP `port`, if it can be found.
pub fn holder(port: u16) -> Option<Holder> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let processes = std::fs::read_dir("/proc").ok()?;
    processes.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        holds_any(&entry.path().join("fd"), &wanted).then(|| Holder {
            pid,
            name: std::fs::read_to_string(entry.path().join("comm"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default(),
        })
    })
}

fn holds_any(fd_dir: &Path, sockets: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(fd_dir) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| target.to_str().map(|t| sockets.iter().any(|s| s == t)))
            .unwrap_or(false)
    })
}

/// Inodes of sockets in LISTEN state on `port` in a `/proc/net/tcp` or `tcp6` table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let listening = fields.get(3) == Some(&LISTEN);
            let same_port = u16::from_str_radix(hex_port, 16).ok() == Some(port);
            (listening && same_port).then(|| fields.get(9)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::doctor::check::Outcome;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0A1F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0A1F 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listening_sockets_on_the_port_are_found() {
        assert_eq!(listening_inodes(TABLE, 2591), vec![4242]);
        assert_eq!(listening_inodes(TABLE, 22), vec![17]);
        assert!(listening_inodes(TABLE, 80).is_empty());
    }

    fn lab() -> Listener {
        let config =
            Config::from_toml_str(Config::example(), Path::new("/etc/hl7edge/x.toml")).unwrap();
        config.listeners.into_iter().next().unwrap()
    }

    #[test]
    fn a_port_held_by_the_agent_is_fine_and_by_another_program_fails() {
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let agent = Holder {
            pid: 7,
            name: "hl7edge".into(),
        };
        let check = judge(0, &lab(), Err(&in_use), Some(agent));
        assert_eq!(check.outcome, Outcome::Ok);
        assert!(check.detail.contains("running hl7edge agent (pid 7)"));
        let other = Holder {
            pid: 9,
            name: "nc".into(),
        };
        let check = judge(0, &lab(), Err(&in_use), Some(other));
        assert_eq!(check.outcome, Outcome::Fail);
        assert_eq!(
            check.fix,
            "stop nc (pid 9), or choose another port in listener[0].bind"
        );
    }

    #[test]
    fn an_unknown_holder_says_how_to_find_it() {
        let in_use = io::Error::from(io::ErrorKind::AddrInUse);
        let check = judge(0, &lab(), Err(&in_use), None);
        assert!(
            check.fix.contains("ss -ltnp 'sport = :2575'"),
            "{}",
            check.fix
        );
    }
}
