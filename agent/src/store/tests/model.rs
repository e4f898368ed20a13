//! A model test: random inserts, resends and forwards against a plain
//! in-memory model of what the store must hold and answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Action {
    /// Insert a message; small value ranges make resends and reuses common.
    Insert {
        source: u8,
        control: u8,
        content: u8,
    },
    /// Forward the pending records whose position bit is set in `mask`.
    Forward { mask: u32 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..2u8, 0..4u8, 0..3u8).prop_map(|(source, control, content)| Action::Insert { source, control, content }),
        1 => any::<u32>().prop_map(|mask| Action::Forward { mask }),
    ]
}

#[derive(Debug, Default)]
struct Model {
    /// (source, control id, content) -> (record id, first ACK).
    first: HashMap<(u8, u8, u8), (uuid::Uuid, Vec<u8>)>,
    control_ids: HashSet<(u8, u8)>,
    pending: BTreeMap<i64, uuid::Uuid>,
    reuse: [u64; 2],
    last: Option<(uuid::Uuid, i64)>,
}

async fn run(actions: Vec<Action>) {
    let (_dir, cfg) = temp_config();
    let store = open_store(&cfg);
    let mut model = Model::default();
    for (attempt, action) in actions.into_iter().enumerate() {
        match action {
            Action::Insert {
                source,
                control,
                content,
            } => {
                let mut msg = message(
                    &format!("src{source}"),
                    &format!("C{control}"),
                    &format!("OBX|{content}"),
                );
                msg.ack = format!("ACK attempt {attempt}").into_bytes();
                let got = store.handle.insert(msg.clone()).await.unwrap();
                check_insert(&mut model, (source, control, content), &msg, got);
            }
            Action::Forward { mask } => {
                let chosen: Vec<i64> = model
                    .pending
                    .keys()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << (i % 32)) != 0)
                    .map(|(_, s)| *s)
                    .collect();
                let done = store
                    .handle
                    .forwarded(chosen.clone(), now_ms())
                    .await
                    .unwrap();
                assert_eq!(done, chosen.len() as u64);
                chosen.iter().for_each(|s| {
                    model.pending.remove(s);
                });
            }
        }
        let held: Vec<(i64, uuid::Uuid)> = reader(&cfg)
            .pending(0, 10_000)
            .unwrap()
            .iter()
            .map(|r| (r.seq, r.id))
            .collect();
        assert_eq!(
            held,
            model
                .pending
                .iter()
                .map(|(s, id)| (*s, *id))
                .collect::<Vec<_>>()
        );
    }
    let stats = reader(&cfg).stats().unwrap();
    for s in stats.sources {
        let index = if s.source == "src0" { 0 } else { 1 };
        assert_eq!(s.control_id_reuse, model.reuse[index], "{}", s.source);
    }
    close(store).await.unwrap();
}

fn check_insert(model: &mut Model, key: (u8, u8, u8), msg: &NewMessage, got: Inserted) {
    match (model.first.get(&key), got) {
        (
            Some((id, ack)),
            Inserted::Duplicate {
                id: got_id,
                ack: got_ack,
            },
        ) => {
            assert_eq!((&got_id, &got_ack), (id, ack));
        }
        (None, Inserted::Stored { id, seq, .. }) => {
            if let Some((last_id, last_seq)) = model.last {
                assert!(id > last_id && seq > last_seq);
            }
            if !model.control_ids.insert((key.0, key.1)) {
                model.reuse[usize::from(key.0)] += 1;
            }
            model.first.insert(key, (id, msg.ack.clone()));
            model.pending.insert(seq, id);
            model.last = Some((id, seq));
        }
        (expected, got) => panic!("model expected {expected:?}, store answered {got:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(actions in prop::collection::vec(action(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(actions));
    }
}
