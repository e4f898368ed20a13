//! `hl7edge provision` as a technician runs it, from a working directory of their own.

use std::path::Path;
use std::process::Command;

use hl7edge::config::Config;

#[test]
fn a_relative_storage_path_is_written_as_the_absolute_path_the_technician_meant() {
    let dir = tempfile::tempdir().unwrap();
    let out = provision(dir.path(), &[]);
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

/// `provision` for gateway acme/s1/gw-1 in `dir`, with `extra` flags.
fn provision(dir: &Path, extra: &[&str]) -> std::process::Output {
    let ca = rcgen::generate_simple_self_signed(vec!["hub-ca".into()]).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_hl7edge"))
        .current_dir(dir)
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
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn a_push_key_given_at_provisioning_is_copied_and_pinned_in_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let org = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    std::fs::write(dir.path().join("org-push.pub"), org.public_key_pem()).unwrap();
    let out = provision(dir.path(), &["--push-key", "org-push.pub"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = Config::load(&dir.path().join("box/hl7edge.toml")).unwrap();
    let pinned = config.hub.push_key.expect("hub.push_key written");
    assert_eq!(
        pinned,
        std::path::absolute(dir.path().join("box/org-push.pub")).unwrap()
    );
    let key = hl7edge::push::load_key(&pinned).expect("the copy is the key");
    assert!(
        stdout.contains(&format!(
            "the organization key {} is pinned",
            key.fingerprint()
        )),
        "{stdout}"
    );
}

#[test]
fn a_push_key_that_is_not_an_ed25519_public_key_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // A P-256 public key, and a private key by mistake: both refused by name.
    let p256 = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("p256.pub"), p256.public_key_pem()).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    std::fs::write(dir.path().join("org-push.key"), ed.serialize_pem()).unwrap();
    for (file, expected) in [
        ("p256.pub", "not an Ed25519 public key"),
        ("org-push.key", "not a PEM public key"),
    ] {
        let out = provision(dir.path(), &["--push-key", file]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file} accepted");
        assert!(
            stderr.contains(&format!("--push-key {file}"))
                && stderr.contains(expected)
                && stderr.contains("openssl pkey -in org-push.key -pubout"),
            "{stderr}"
        );
        assert!(
            !dir.path().join("box/hl7edge.toml").exists(),
            "nothing written"
        );
    }
}
