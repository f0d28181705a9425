//! kill -9 during block production loses no committed block and corrupts nothing.
//!
//! A real `crash-writer` process runs the deterministic scenario on RocksDB and is killed with
//! SIGKILL at random moments, again and again, then allowed to finish. Every block it reported
//! as committed must still be there after each restart, and the final chain must equal, block
//! for block and root for root, an uninterrupted run of the same scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TARGET: u64 = 300;
const KILLS: usize = 12;

struct Run {
    started_at: Option<u64>,
    committed: Option<u64>,
    finished: bool,
}

/// Starts the writer, kills it after `kill_after` (or lets it finish when `None`).
fn run_writer(dir: &std::path::Path, kill_after: Option<Duration>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-writer"))
        .arg(dir)
        .arg(TARGET.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn crash-writer");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut run = Run {
        started_at: None,
        committed: None,
        finished: false,
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let kill_at = kill_after.map(|d| Instant::now() + d);
    loop {
        let now = Instant::now();
        if kill_at.is_some_and(|k| now >= k) {
            // SIGKILL: no destructors, no flush, exactly like a power cut for the process.
            child.kill().expect("kill");
            break;
        }
        assert!(now < deadline, "crash-writer made no progress");
        match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => {
                let mut parts = line.split_whitespace();
                match (
                    parts.next(),
                    parts.next().and_then(|h| h.parse::<u64>().ok()),
                ) {
                    (Some("start"), Some(h)) => run.started_at = Some(h),
                    (Some("committed"), Some(h)) => run.committed = Some(h),
                    _ => panic!("unexpected writer output: {line}"),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(status.success(), "crash-writer failed: {status}");
                    run.finished = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait");
                assert!(status.success(), "crash-writer failed: {status}");
                run.finished = true;
                break;
            }
        }
    }
    let _ = child.wait();
    let _ = reader.join();
    // Lines already written before the kill still count as committed.
    while let Ok(line) = rx.try_recv() {
        if let Some(h) = line
            .strip_prefix("committed ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|h| h.parse().ok())
        {
            run.committed = Some(h);
        }
    }
    run
}

#[test]
fn repeated_kill_9_loses_nothing_and_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut rng = rand::thread_rng();
    let mut highest_committed: u64 = 0;
    let mut kills = 0;
    loop {
        let kill_after = (kills < KILLS).then(|| Duration::from_millis(rng.gen_range(20..300)));
        let run = run_writer(&db, kill_after);
        if let Some(start) = run.started_at {
            assert!(
                start >= highest_committed,
                "restart came back at height {start}, but block {highest_committed} had been reported committed"
            );
        }
        if let Some(c) = run.committed {
            highest_committed = highest_committed.max(c);
        }
        if run.finished {
            break;
        }
        kills += 1;
    }
    assert_eq!(
        kills, KILLS,
        "the writer finished before all kills happened; raise TARGET"
    );
    assert_eq!(highest_committed, TARGET);

    // Reference: the same scenario, uninterrupted, in memory.
    let reference = doin_tests::open_memory_chain(doin_tests::scenario::genesis()).unwrap();
    let validator = doin_tests::scenario::validator();
    while reference.tip().header.height < TARGET {
        doin_tests::scenario::step(&reference, &validator).unwrap();
    }

    // Reopen the crashed store (this also checks the tree root against the tip header).
    let crashed = doin_tests::open_rocks_chain(&db, doin_tests::scenario::genesis()).unwrap();
    assert_eq!(crashed.tip().header.height, TARGET);
    for h in 0..=TARGET {
        let a = crashed.store().header(h).unwrap().expect("header present");
        let b = reference
            .store()
            .header(h)
            .unwrap()
            .expect("reference header");
        assert_eq!(
            a.header, b.header,
            "block {h} differs from the uninterrupted run"
        );
        let body_a = crashed.store().body(h).unwrap().expect("body present");
        let body_b = reference.store().body(h).unwrap().expect("reference body");
        assert_eq!(body_a, body_b, "transactions of block {h} differ");
    }
    // Supply is intact: every account plus what was burned equals what was issued.
    let users = doin_tests::scenario::users();
    let mut sum: u128 = 0;
    for u in users.iter().chain(std::iter::once(&validator)) {
        sum += u128::from(crashed.account(&u.public()).unwrap().balance.base_units());
    }
    use doin_tx_core::StateView;
    let stats = crashed.store().chain_stats().unwrap();
    assert_eq!(
        sum + u128::from(stats.burned.base_units()),
        u128::from(stats.issued.base_units())
    );
}
