//! Parsers for single values: names, sizes, durations, addresses, networks, paths, time zones.
//!
//! Each returns the typed value or the [`Problem`] to report; none of them touches the file
//! system (time zones are looked up in the system's time zone database).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use ipnet::{IpNet, Ipv4Net};
use jiff::tz::TimeZone;

use super::error::Problem;
use super::raw::Quantity;

/// Characters allowed in `gateway.org/site/id`.
pub(super) const IDENTITY_CHARS: &str = "a-z 0-9 - _ .";
/// Characters allowed in listener names.
pub(super) const LISTENER_NAME_CHARS: &str = "a-z 0-9 - _";
const MAX_NAME_CHARS: usize = 64;

/// A lowercase name that is safe as an MQTT topic level; `dot` allows `.` too.
pub(super) fn name(value: &str, dot: bool) -> Result<String, Problem> {
    let ok_char = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || (dot && c == '.')
    };
    let ok =
        !value.is_empty() && value.chars().count() <= MAX_NAME_CHARS && value.chars().all(ok_char);
    if ok {
        Ok(value.to_owned())
    } else {
        let allowed = if dot {
            IDENTITY_CHARS
        } else {
            LISTENER_NAME_CHARS
        };
        Err(Problem::Name {
            value: value.to_owned(),
            allowed,
        })
    }
}

/// A byte count such as `"2 GiB"` (or a bare integer of bytes) within `range`.
pub(super) fn size(value: &Quantity, range: RangeInclusive<u64>) -> Result<u64, Problem> {
    let (text, bytes) = match value {
        Quantity::Integer(n) => (n.to_string(), u64::try_from(*n).ok()),
        Quantity::Text(text) => (
            text.clone(),
            text.trim().parse::<ByteSize>().ok().map(|b| b.as_u64()),
        ),
    };
    let bytes = bytes.ok_or_else(|| Problem::Size {
        value: text.clone(),
    })?;
    if range.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(Problem::SizeRange {
            value: text,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// A duration such as `"30s"`, `"5m"` or `"7d"` within `range`; bare integers are refused.
pub(super) fn duration(
    value: &Quantity,
    range: RangeInclusive<Duration>,
) -> Result<Duration, Problem> {
    let text = match value {
        Quantity::Integer(n) => return Err(Problem::DurationUnit { value: *n }),
        Quantity::Text(text) => text,
    };
    let parsed = humantime::parse_duration(text.trim()).map_err(|_| Problem::Duration {
        value: text.clone(),
    })?;
    if range.contains(&parsed) {
        Ok(parsed)
    } else {
        Err(Problem::DurationRange {
            value: text.clone(),
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// An integer within `range`.
pub(super) fn integer(value: i64, range: RangeInclusive<i64>) -> Result<i64, Problem> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(Problem::IntegerRange {
            value,
            min: *range.start(),
            max: *range.end(),
        })
    }
}

/// An allowlist entry: a network (`10.0.0.0/24`) or a single address (`/32`, `/128`).
///
/// Host bits are cleared (`10.0.0.5/24` is `10.0.0.0/24`) and IPv4-mapped IPv6 networks are
/// stored as IPv4, to match [`canonical_ip`].
pub(super) fn network(value: &str) -> Result<IpNet, Problem> {
    let text = value.trim();
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => text
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| Problem::Network {
                value: value.to_owned(),
            })?,
    };
    Ok(canonical_net(net.trunc()))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address unchanged.
pub(super) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// `::ffff:a.b.c.d/n` (n ≥ 96) as `a.b.c.d/(n-96)`; anything else unchanged.
fn canonical_net(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else { return net };
    let mapped = v6.network().to_ipv4_mapped();
    match (mapped, v6.prefix_len().checked_sub(96)) {
        (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
        _ => net,
    }
}

/// A local `address:port` to bind.
pub(super) fn socket_addr(value: &str) -> Result<SocketAddr, Problem> {
    value.trim().parse().map_err(|_| Problem::SocketAddr {
        value: value.to_owned(),
    })
}

/// Whether two listeners could not both bind: same port (port 0 never conflicts) and the same
/// address, or one is a wildcard covering the other (`[::]` also covers IPv4 on Linux).
pub(super) fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    let covers = |x: IpAddr, y: IpAddr| x.is_unspecified() && (x.is_ipv6() || y.is_ipv4());
    a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip())
}

/// A file path: absolute as written, or relative to `base_dir` (the config file's directory).
pub(super) fn path(base_dir: &Path, value: &str) -> Result<PathBuf, Problem> {
    let problem = |reason| Problem::Path {
        value: value.to_owned(),
        reason,
    };
    if value.trim().is_empty() {
        return Err(problem("it is empty"));
    }
    if value.starts_with('~') {
        return Err(problem("\"~\" is not expanded; write the full path"));
    }
    let path = Path::new(value);
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    })
}

/// An IANA time zone from the system's time zone database.
pub(super) fn time_zone(value: &str) -> Result<TimeZone, Problem> {
    TimeZone::get(value.trim()).map_err(|err| Problem::TimeZone {
        value: value.to_owned(),
        reason: err.to_string(),
    })
}

/// `bytes` in the largest binary unit that divides it exactly, e.g. `64 MiB`.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map_or_else(
            || format!("{bytes} B"),
            |(unit, name)| format!("{} {name}", bytes / unit),
        )
}

/// `d` in the largest unit that divides it exactly, e.g. `365d`, `18h`, `1s`.
pub(super) fn human_duration(d: Duration) -> String {
    const UNITS: [(u64, &str); 3] = [(86_400, "d"), (3_600, "h"), (60, "m")];
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    UNITS
        .iter()
        .find(|(unit, _)| secs >= *unit && secs.is_multiple_of(*unit))
        .map_or_else(
            || format!("{secs}s"),
            |(unit, name)| format!("{}{name}", secs / unit),
        )
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const MIB: u64 = 1 << 20;

    fn text(s: &str) -> Quantity {
        Quantity::Text(s.to_owned())
    }

    #[test]
    fn names_reject_topic_separators_wildcards_uppercase_and_empty() {
        for bad in ["", "a/b", "a+b", "a#", "Clinic", "a b", &"x".repeat(65)] {
            assert!(name(bad, true).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(name("gw-0001.a_b", true).unwrap(), "gw-0001.a_b");
        assert!(
            matches!(name("lab.1", false), Err(Problem::Name { allowed, .. }) if allowed == LISTENER_NAME_CHARS)
        );
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units_and_bare_bytes() {
        let any = 0..=u64::MAX;
        assert_eq!(size(&text("2 GiB"), any.clone()).unwrap(), 2 << 30);
        assert_eq!(size(&text("512MiB"), any.clone()).unwrap(), 512 * MIB);
        assert_eq!(size(&text("1 MB"), any.clone()).unwrap(), 1_000_000);
        assert_eq!(size(&Quantity::Integer(4096), any.clone()).unwrap(), 4096);
        assert!(matches!(
            size(&text("lots"), any.clone()),
            Err(Problem::Size { .. })
        ));
        assert!(matches!(
            size(&Quantity::Integer(-1), any),
            Err(Problem::Size { .. })
        ));
    }

    #[test]
    fn sizes_out_of_range_name_the_bounds_in_binary_units() {
        let err = size(&text("128 MiB"), 1024..=64 * MIB).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"128 MiB\" is out of range (allowed: 1 KiB to 64 MiB)"
        );
    }

    #[test]
    fn bounds_are_shown_in_the_largest_exact_unit() {
        assert_eq!(human_size(1536), "1536 B");
        assert_eq!(human_size(16 << 40), "16 TiB");
        assert_eq!(human_duration(Duration::from_secs(365 * 86_400)), "365d");
        assert_eq!(human_duration(Duration::from_secs(90)), "90s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn durations_need_units_and_respect_the_range() {
        let range = Duration::ZERO..=Duration::from_secs(365 * 86_400);
        assert_eq!(
            duration(&text("7d"), range.clone()).unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            duration(&text("5m"), range.clone()).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            duration(&text("0s"), range.clone()).unwrap(),
            Duration::ZERO
        );
        assert_eq!(
            duration(&Quantity::Integer(30), range.clone()),
            Err(Problem::DurationUnit { value: 30 })
        );
        assert!(matches!(
            duration(&text("soon"), range.clone()),
            Err(Problem::Duration { .. })
        ));
        let err = duration(&text("400d"), range).unwrap_err();
        assert!(err.to_string().ends_with("(allowed: 0s to 365d)"), "{err}");
    }

    #[test]
    fn plain_addresses_become_host_networks() {
        assert_eq!(network("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        assert_eq!(
            network("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(network("10.0.0.5/24").unwrap().to_string(), "10.0.0.0/24");
    }

    #[test]
    fn impossible_networks_are_rejected() {
        for bad in ["10.0.0.0/33", "10.0.0", "", "any", "10.0.0.0/24/1"] {
            assert_eq!(network(bad), Err(Problem::Network { value: bad.into() }));
        }
    }

    #[test]
    fn ipv4_mapped_entries_are_stored_as_ipv4() {
        assert_eq!(
            network("::ffff:10.0.0.0/120").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert_eq!(
            network("::ffff:192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
        assert_eq!(canonical_ip(mapped), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(
            canonical_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
    }

    #[test]
    fn binds_conflict_on_same_port_with_overlapping_addresses_only() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(binds_conflict(addr("0.0.0.0:2575"), addr("10.0.0.1:2575")));
        assert!(binds_conflict(addr("10.0.0.1:2575"), addr("[::]:2575")));
        assert!(binds_conflict(
            addr("127.0.0.1:2575"),
            addr("127.0.0.1:2575")
        ));
        assert!(!binds_conflict(
            addr("10.0.0.1:2575"),
            addr("10.0.0.2:2575")
        ));
        assert!(!binds_conflict(addr("0.0.0.0:2575"), addr("[::1]:2575")));
        assert!(!binds_conflict(addr("0.0.0.0:2575"), addr("0.0.0.0:2576")));
        assert!(!binds_conflict(addr("127.0.0.1:0"), addr("127.0.0.1:0")));
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let base = Path::new("/etc/hl7edge");
        assert_eq!(
            path(base, "maps/lab.csv").unwrap(),
            Path::new("/etc/hl7edge/maps/lab.csv")
        );
        assert_eq!(path(base, "/srv/q.db").unwrap(), Path::new("/srv/q.db"));
        assert!(matches!(path(base, ""), Err(Problem::Path { .. })));
        assert!(matches!(
            path(base, "~/device.pem"),
            Err(Problem::Path { .. })
        ));
    }

    #[test]
    fn time_zones_must_exist() {
        assert_eq!(
            time_zone("Europe/Berlin").unwrap().iana_name(),
            Some("Europe/Berlin")
        );
        assert!(matches!(
            time_zone("Europe/Springfield"),
            Err(Problem::TimeZone { .. })
        ));
    }

    #[test]
    fn integers_outside_the_range_report_the_range() {
        assert_eq!(
            integer(0, 1..=65_535),
            Err(Problem::IntegerRange {
                value: 0,
                min: 1,
                max: 65_535
            })
        );
        assert_eq!(integer(64, 1..=65_535), Ok(64));
    }
}
