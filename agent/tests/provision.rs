//! `hl7edge provision` as a technician runs it, from a working directory of their own.

use std::path::Path;
use std::process::Command;

use hl7edge::config::Config;

#[test]
fn a_relative_storage_path_is_written_as_the_absolute_path_the_technician_meant() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["hub-ca".into()]).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hl7edge"))
        .current_dir(dir.path())
        .args([
            "provision",
            "--config",
            "box/hl7edge.toml",
            "--org",
            "acme",
            "--site",
            "s1",
            "--gateway",
            "gw-1",
            "--hub",
            "mqtts://hub.example.org:8883",
            "--ca",
            "ca.pem",
            "--listener",
            "lab=127.0.0.1:2575",
            "--allow",
            "127.0.0.1",
            "--storage",
            "data/queue.db",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = Config::load(&dir.path().join("box/hl7edge.toml")).unwrap();
    let expected = std::path::absolute(dir.path().join("data/queue.db")).unwrap();
    assert_eq!(config.storage.path, expected);
    assert!(Path::new(&expected).parent().unwrap().is_dir());
}
