use super::*;

fn active(sequence: u64, digest: &str) -> Active {
    Active {
        sequence,
        digest: digest.to_owned(),
    }
}

#[test]
fn a_first_push_is_applied() {
    assert_eq!(decide(None, 1, "a"), Verdict::Apply);
}

#[test]
fn a_newer_push_is_applied_and_the_running_one_again_is_no_change() {
    let runs = active(10, "a");
    assert_eq!(decide(Some(&runs), 11, "b"), Verdict::Apply);
    assert_eq!(decide(Some(&runs), 10, "a"), Verdict::Same);
}

#[test]
fn an_older_push_is_a_downgrade_and_another_push_under_the_same_sequence_is_refused() {
    let runs = active(10, "a");
    assert_eq!(decide(Some(&runs), 9, "b"), Verdict::Refuse("downgrade"));
    assert_eq!(
        decide(Some(&runs), 10, "b"),
        Verdict::Refuse("sequence_reused")
    );
}

#[test]
fn a_saved_copy_replaces_the_old_one_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushed").join("lab.push");
    save(&path, b"first").unwrap();
    save(&path, b"second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    assert!(!path.with_extension("push.tmp").exists());
}
