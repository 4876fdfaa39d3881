use super::*;
use crate::runs::{Counts, Outcome};
use crate::sync::plan::ChangeSet;

fn run(outcome: Outcome) -> RunRecord {
    RunRecord {
        finished_at: 1,
        duration_ms: 2,
        outcome,
        counts: Counts::default(),
        error: None,
    }
}

#[test]
fn apply_writes_entries_and_bumps_the_generation_once_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.generation().unwrap(), 0);
    let anna = Entry::new("corp", "1", "Anna");
    let set = ChangeSet {
        create: vec![anna.clone(), Entry::new("corp", "2", "Bert")],
        ..Default::default()
    };
    assert_eq!(
        store
            .apply("corp", set.book(), &run(Outcome::Applied))
            .unwrap(),
        1
    );
    let other = ChangeSet {
        create: vec![Entry::new("hr", "1", "Hanna")],
        ..Default::default()
    };
    assert_eq!(
        store
            .apply("hr", other.book(), &run(Outcome::Applied))
            .unwrap(),
        2
    );

    let corp = store.entries_of("corp").unwrap();
    assert_eq!(
        corp.len(),
        2,
        "connector ranges do not bleed into each other"
    );
    assert_eq!(corp["1"], anna);
    assert_eq!(store.all_entries().unwrap().len(), 3);

    let none = ChangeSet {
        unchanged: 2,
        ..Default::default()
    };
    assert_eq!(
        store
            .apply("corp", none.book(), &run(Outcome::Unchanged))
            .unwrap(),
        2,
        "no change, no new generation"
    );
    let stored = store.entries_of("corp").unwrap();
    let bert = stored["2"].clone();
    let remove = crate::sync::plan::plan(stored, vec![bert], crate::sync::connector::Mode::Mirror);
    assert_eq!(remove.remove, [anna]);
    assert_eq!(
        store
            .apply("corp", remove.book(), &run(Outcome::Applied))
            .unwrap(),
        3
    );
    assert_eq!(store.entries_of("corp").unwrap().len(), 1);
    assert_eq!(store.entries_of("hr").unwrap().len(), 1);
    assert_eq!(store.last_runs().unwrap()["corp"].outcome, Outcome::Applied);
}

#[test]
fn large_books_span_pieces_and_shrinking_drops_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    let people = |n: usize| {
        (0..n)
            .map(|i| Entry::new("corp", &format!("{i:05}"), "Pérson with a name"))
            .collect::<Vec<_>>()
    };
    let set = ChangeSet {
        create: people(2500),
        ..Default::default()
    };
    store
        .apply("corp", set.book(), &run(Outcome::Applied))
        .unwrap();
    let stored = store.entries_of("corp").unwrap();
    assert_eq!(stored.len(), 2500);
    assert_eq!(stored["01234"].display_name, "Pérson with a name");
    let pieces = |store: &Store| {
        store
            .call(|db| {
                Ok(db
                    .scan_prefix(book_prefix("corp"))
                    .map(|kv| kv.unwrap().1.len())
                    .collect::<Vec<_>>())
            })
            .unwrap()
    };
    let sizes = pieces(&store);
    assert!(sizes.len() > 10, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= PIECE), "every value stays small");
    let smaller = crate::sync::plan::plan(stored, people(30), crate::sync::connector::Mode::Mirror);
    store
        .apply("corp", smaller.book(), &run(Outcome::Applied))
        .unwrap();
    assert_eq!(
        store.all_entries().unwrap().len(),
        30,
        "no stale piece is read back"
    );
    assert!(pieces(&store).len() < sizes.len());
}

#[test]
fn books_written_as_arrays_of_entries_still_read() {
    // Before pieces, each value was a JSON array of up to 1,000 entries.
    let chunks: Vec<Vec<u8>> = [
        vec![
            Entry::new("corp", "1", "Anna"),
            Entry::new("corp", "2", "Bert"),
        ],
        vec![Entry::new("corp", "3", "Cem")],
    ]
    .iter()
    .map(|c| serde_json::to_vec(c).unwrap())
    .collect();
    let mut decoder = Decoder::default();
    for chunk in &chunks {
        decoder.push(chunk).unwrap();
    }
    let names: Vec<String> = decoder
        .finish()
        .unwrap()
        .into_iter()
        .map(|e| e.display_name)
        .collect();
    assert_eq!(names, ["Anna", "Bert", "Cem"]);
}

#[test]
fn pieces_split_anywhere_decode_to_the_same_entries() {
    let entries: Vec<Entry> = (0..50)
        .map(|i| Entry::new("corp", &i.to_string(), &format!("Ünïcode {i} \"quoted\"")))
        .collect();
    let refs: Vec<&Entry> = entries.iter().collect();
    let text = encode_book(&refs).unwrap().concat();
    for size in [1, 7, 100, 4096] {
        let mut decoder = Decoder::default();
        for piece in text.chunks(size) {
            decoder.push(piece).unwrap();
        }
        assert_eq!(decoder.finish().unwrap(), entries, "pieces of {size} bytes");
    }
    let mut truncated = Decoder::default();
    truncated.push(&text[..text.len() - 3]).unwrap();
    assert!(truncated.finish().is_err());
}

#[test]
fn a_failed_write_is_shown_by_last_runs_and_a_closed_store_refuses_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert!(store.close(Duration::from_secs(5)));
    let mut failed = run(Outcome::Failed);
    failed.error = Some("disk full".into());
    assert!(matches!(
        store.record_run("corp", &failed),
        Err(StoreError::Closed { .. })
    ));
    assert_eq!(
        store.last_runs().unwrap()["corp"].error.as_deref(),
        Some("disk full")
    );
}

#[test]
fn the_run_history_keeps_the_last_runs_and_the_health_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).unwrap();
        let mut ok = run(Outcome::Applied);
        ok.finished_at = 7;
        store.record_run("corp", &ok).unwrap();
        for i in 0..crate::runs::HISTORY + 5 {
            let mut failed = run(Outcome::Failed);
            failed.finished_at = 100 + i as u64;
            store.record_run("corp", &failed).unwrap();
        }
        store.record_run("other", &run(Outcome::Unchanged)).unwrap();
        assert!(store.close(Duration::from_secs(5)));
    }
    let store = Store::open(&path).unwrap();
    let (runs, health) = store.runs("corp");
    assert_eq!(runs.len(), crate::runs::HISTORY);
    assert_eq!(
        runs.first().map(|r| r.finished_at),
        Some(100 + crate::runs::HISTORY as u64 + 4),
        "newest first"
    );
    assert_eq!(health.last_success, Some(7), "kept beyond the history");
    assert_eq!(health.consecutive_failures, crate::runs::HISTORY as u64 + 5);
    assert_eq!(store.runs("other").1.consecutive_failures, 0);
    assert_eq!(
        store.last_runs().unwrap()["corp"].finished_at,
        runs[0].finished_at
    );
    // The removed entries are gone from disk, not only from memory.
    let on_disk = store
        .call(|db| Ok(db.scan_prefix(HISTORY_PREFIX).count()))
        .unwrap();
    assert_eq!(on_disk, crate::runs::HISTORY + 1);
}

#[test]
fn a_damaged_store_names_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).unwrap();
        store.record_run("corp", &run(Outcome::Applied)).unwrap();
        assert!(store.close(Duration::from_secs(5)));
    }
    // Garbage over sled's files, as a failing disk or a stray copy leaves them.
    for file in std::fs::read_dir(&path).unwrap() {
        let file = file.unwrap().path();
        if file.is_file() {
            std::fs::write(&file, vec![0x5a; 4096]).unwrap();
        }
    }
    let err = Store::open(&path)
        .err()
        .expect("a damaged store is refused")
        .to_string();
    assert!(err.contains("store.path") && err.contains("sync"), "{err}");
}

#[test]
fn a_store_from_before_the_history_shows_its_last_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = sled::open(&path).unwrap();
        let old = serde_json::to_vec(&run(Outcome::Applied)).unwrap();
        db.insert([RUN, b"corp"].concat(), old).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let (runs, health) = store.runs("corp");
    assert_eq!(runs, [run(Outcome::Applied)]);
    assert_eq!(health.last_success, Some(1));
    store.record_run("corp", &run(Outcome::Failed)).unwrap();
    assert_eq!(store.runs("corp").0.len(), 2);
}

#[test]
fn the_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).unwrap();
        let set = ChangeSet {
            create: vec![Entry::new("corp", "1", "Anna")],
            ..Default::default()
        };
        store
            .apply("corp", set.book(), &run(Outcome::Applied))
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.generation().unwrap(), 1);
    assert_eq!(store.all_entries().unwrap()[0].display_name, "Anna");
}
