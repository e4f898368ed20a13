//! The forwarder's decisions on a virtual clock: `t0 + n` stands for "n
//! later"; nothing here sleeps.

use super::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

fn limits(window: u16) -> Limits {
    Limits::new(window, 64, 128 * KIB, Duration::from_secs(5))
}

/// A connected state with `window` publishes and a virtual clock at `t0`.
fn connected(window: u16) -> (ForwardState, Instant) {
    let t0 = Instant::now();
    let mut s = ForwardState::new(limits(window), t0);
    s.on_connack(t0);
    (s, t0)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn rows_are_forwarded_only_after_their_puback() {
    let (mut s, t0) = connected(4);
    s.requested(vec![1, 2], 100);
    s.requested(vec![3], 50);
    assert_eq!(s.on_outgoing_publish(7), Effect::None);
    assert_eq!(s.on_outgoing_publish(8), Effect::None);
    assert_eq!(s.on_puback(8, true, t0), Effect::Forwarded(vec![3]));
    assert_eq!(s.on_puback(7, true, t0), Effect::Forwarded(vec![1, 2]));
    assert_eq!((s.outstanding(), s.outstanding_bytes()), (0, 0));
    assert_eq!(s.cursor(), 3);
}

#[test]
fn the_window_limits_outstanding_publishes() {
    let (mut s, t0) = connected(2);
    s.requested(vec![1], 10);
    assert_eq!(s.free_slots(), 1);
    s.requested(vec![2], 10);
    assert_eq!(s.free_slots(), 0);
    s.on_outgoing_publish(1);
    s.on_puback(1, true, t0);
    assert_eq!(s.free_slots(), 1);
}

#[test]
fn a_failed_puback_keeps_the_rows_and_asks_for_reconnect() {
    let (mut s, t0) = connected(2);
    s.requested(vec![5], 10);
    s.on_outgoing_publish(1);
    assert!(matches!(s.on_puback(1, false, t0), Effect::Reconnect(_)));
    assert!(!s.proved_healthy());
}

#[test]
fn reset_rereads_from_the_start_of_the_queue() {
    let (mut s, t0) = connected(2);
    s.requested(vec![10, 11], 10);
    s.on_outgoing_publish(1);
    s.reset(t0);
    assert_eq!(s.cursor(), 0);
    assert_eq!((s.outstanding(), s.outstanding_bytes()), (0, 0));
    assert!(!s.is_connected());
    assert_eq!(s.on_puback(1, true, t0), Effect::None);
}

#[test]
fn publishes_without_rows_share_the_packet_id_order() {
    let (mut s, t0) = connected(4);
    s.requested_other(30);
    s.requested(vec![1], 10);
    s.on_outgoing_publish(1);
    s.on_outgoing_publish(2);
    assert_eq!(s.on_puback(1, true, t0), Effect::None);
    assert!(!s.proved_healthy(), "a status PUBACK forwards nothing");
    assert_eq!(s.on_puback(2, true, t0), Effect::Forwarded(vec![1]));
    assert!(s.proved_healthy());
}

#[test]
fn a_heartbeat_between_record_publishes_does_not_shift_their_pubacks() {
    let (mut s, t0) = connected(8);
    s.requested(vec![1, 2], 10);
    s.requested_other(10); // heartbeat
    s.requested(vec![3], 10);
    assert_eq!(s.on_outgoing_publish(10), Effect::None);
    assert_eq!(s.on_outgoing_publish(11), Effect::None);
    assert_eq!(s.on_outgoing_publish(12), Effect::None);
    // The heartbeat's PUBACK first: it forwards nothing.
    assert_eq!(s.on_puback(11, true, t0), Effect::None);
    assert_eq!(s.on_puback(12, true, t0), Effect::Forwarded(vec![3]));
    assert_eq!(s.on_puback(10, true, t0), Effect::Forwarded(vec![1, 2]));
    assert_eq!(s.outstanding(), 0);
    assert_eq!(s.cursor(), 3, "a heartbeat does not move the cursor");
}

#[test]
fn unknown_pubacks_are_ignored_and_unrequested_pkids_force_reconnect() {
    let (mut s, t0) = connected(2);
    assert_eq!(s.on_puback(9, true, t0), Effect::None);
    assert!(matches!(s.on_outgoing_publish(3), Effect::Reconnect(_)));
}

#[test]
fn nothing_is_read_before_the_broker_accepts_the_connection() {
    let t0 = Instant::now();
    let mut s = ForwardState::new(limits(8), t0);
    assert_eq!(s.next_read(0, 1024), None);
    s.on_connack(t0 + ms(5));
    let read = s.next_read(0, 1024).expect("connected: read");
    assert_eq!(read.after_seq, 0);
    assert_eq!(
        read.max_rows,
        2 * 64,
        "a quarter of the window, full batches"
    );
}

#[test]
fn a_caught_up_queue_reads_a_commit_only_after_the_linger() {
    let (mut s, t0) = connected(8);
    s.on_read(0);
    assert_eq!(s.next_read(0, 1024), None, "caught up");
    s.on_commit(t0 + ms(100));
    assert_eq!(s.next_timer(), Some(t0 + ms(100) + LINGER));
    s.on_commit(t0 + ms(105));
    assert_eq!(
        s.next_timer(),
        Some(t0 + ms(100) + LINGER),
        "later commits join the same wait"
    );
    s.on_timer(t0 + ms(110));
    assert_eq!(s.next_read(0, 1024), None, "the linger has not passed");
    s.on_timer(t0 + ms(100) + LINGER);
    assert_eq!(s.next_timer(), None);
    assert!(s.next_read(0, 1024).is_some());
}

#[test]
fn a_commit_during_a_backlog_does_not_delay_the_next_read() {
    let (mut s, t0) = connected(8);
    s.on_read(500);
    s.on_commit(t0);
    assert_eq!(s.next_timer(), None);
    assert!(s.next_read(0, 1024).is_some());
}

#[test]
fn the_tick_reads_again_after_the_queue_looked_empty() {
    let (mut s, t0) = connected(8);
    s.on_read(0);
    s.on_commit(t0);
    assert_eq!(s.on_tick(t0 + ms(500)), Effect::None);
    assert_eq!(s.next_timer(), None, "the tick's read replaces the linger");
    assert!(s.next_read(0, 1024).is_some());
}

#[test]
fn no_puback_for_the_no_progress_limit_ends_the_connection() {
    let (mut s, t0) = connected(8);
    let limit = s.limits().no_progress;
    assert_eq!(limit, MIN_NO_PROGRESS, "two 5 s keep-alives are less");
    s.requested(vec![1], 1_000);
    s.on_outgoing_publish(1);
    assert_eq!(s.on_tick(t0 + limit), Effect::None);
    assert!(matches!(
        s.on_tick(t0 + limit + ms(1)),
        Effect::Reconnect(_)
    ));
}

#[test]
fn a_puback_restarts_the_no_progress_clock() {
    let (mut s, t0) = connected(8);
    let limit = s.limits().no_progress;
    s.requested(vec![1], 1_000);
    s.requested(vec![2], 1_000);
    s.on_outgoing_publish(1);
    s.on_outgoing_publish(2);
    s.on_puback(1, true, t0 + limit);
    assert_eq!(s.on_tick(t0 + limit + ms(1)), Effect::None);
    assert!(matches!(
        s.on_tick(t0 + limit * 2 + ms(1)),
        Effect::Reconnect(_)
    ));
}

#[test]
fn a_connection_with_nothing_outstanding_never_times_out() {
    let (mut s, t0) = connected(8);
    assert_eq!(s.on_tick(t0 + Duration::from_secs(86_400)), Effect::None);
}

#[test]
fn large_outstanding_payloads_get_their_transfer_time_on_a_slow_uplink() {
    let t0 = Instant::now();
    let mut s = ForwardState::new(Limits::new(8, 64, 4 * MIB, Duration::from_secs(5)), t0);
    s.on_connack(t0);
    s.requested(vec![1], 4 * MIB);
    s.on_outgoing_publish(1);
    // 4 MiB at 32 KiB/s: 128 s on top of the base limit.
    let patience = MIN_NO_PROGRESS + Duration::from_secs(128);
    assert_eq!(s.patience(), patience);
    assert_eq!(s.on_tick(t0 + patience), Effect::None);
    assert!(matches!(
        s.on_tick(t0 + patience + ms(1)),
        Effect::Reconnect(_)
    ));
}

#[test]
fn reads_pause_while_outstanding_bytes_fill_the_budget() {
    let t0 = Instant::now();
    let mut s = ForwardState::new(Limits::new(64, 64, MIB, Duration::from_secs(5)), t0);
    s.on_connack(t0);
    let budget = s.limits().budget_bytes;
    assert_eq!(budget, MIN_BUDGET_BYTES);
    let first = s.next_read(0, 1024).expect("read");
    assert_eq!(first.max_bytes, budget / 2);
    s.requested(vec![1], budget / 2);
    let second = s.next_read(0, 1024).expect("room for another page");
    assert_eq!(second.max_bytes, budget / 2);
    s.requested(vec![2], budget / 2);
    assert_eq!(s.next_read(0, 1024), None, "the budget is full");
    s.on_outgoing_publish(1);
    assert_eq!(s.on_puback(1, true, t0), Effect::Forwarded(vec![1]));
    assert!(s.next_read(0, 1024).is_some(), "a PUBACK frees its bytes");
}

#[test]
fn a_payload_over_the_budget_is_read_alone() {
    let t0 = Instant::now();
    let mut s = ForwardState::new(Limits::new(64, 64, 16 * MIB, Duration::from_secs(5)), t0);
    s.on_connack(t0);
    assert_eq!(s.limits().budget_bytes, 16 * MIB, "at least one payload");
    let read = s.next_read(0, 1024).expect("read");
    assert_eq!(read.max_bytes, 16 * MIB);
    s.requested(vec![1], 15 * MIB);
    assert_eq!(s.next_read(0, 1024), None);
}

#[test]
fn the_cursor_moves_only_past_rows_published_or_set_aside() {
    let (mut s, _) = connected(8);
    let read = s.next_read(0, 1024).expect("read");
    assert_eq!(read.after_seq, 0);
    s.on_read(10); // rows 1..=10 read; only 1..=4 handed out
    s.requested(vec![1, 2, 3], 30);
    s.skipped(4);
    let next = s.next_read(0, 1024).expect("read");
    assert_eq!(next.after_seq, 4, "5..=10 are read again");
}

#[test]
fn reads_pause_while_deletes_fall_behind() {
    let (s, _) = connected(8);
    assert_eq!(s.next_read(1024, 1024), None);
    assert!(s.next_read(1023, 1024).is_some());
}

#[test]
fn a_full_window_page_pauses_reads() {
    let (mut s, _) = connected(8);
    for seq in 1..=7 {
        s.requested(vec![seq], 10);
    }
    assert_eq!(s.free_slots(), 1);
    assert_eq!(s.next_read(0, 1024), None, "less than a page (2) free");
}
