//! Three nodes in one process (`doin_tests::cluster`): the devnet's producer and two
//! followers. A follower cut off from the others falls behind and catches up once the network
//! heals; a follower stopped and started again on its data syncs what it missed; every node
//! ends with the same chains.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use doin_tests::cluster::{follower_keys, producer_keys, wait_until, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_or_stopped_follower_catches_up_and_all_hold_the_same_chains() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(dir.path(), 300, 400, 3, 1);
    let producer = c.add(producer_keys).await;
    let a = c.add(follower_keys).await;
    let b = c.add(follower_keys).await;
    c.wait_equal_tips(3, 1, 120).await;

    // Cut `a` off: it stays where it is while the producer goes on.
    c.partition(&[producer, b], &[a]).await;
    let tx = |c: &Cluster, i: usize| c.node(i).tx.as_ref().unwrap().tip().header.height;
    let cut_at = tx(&c, a);
    wait_until("the producer moves on", 60, || {
        tx(&c, producer) >= cut_at + 8
    })
    .await;
    assert!(
        tx(&c, a) <= cut_at + 1,
        "a cut-off follower got blocks: {} → {}",
        cut_at,
        tx(&c, a)
    );
    c.heal(&[producer, b], &[a]).await;
    let target = tx(&c, producer);
    c.wait_equal_tips(target.saturating_sub(1), 1, 120).await;

    // Stop `b`, let the chains move, start it again on its data.
    c.stop(b).await;
    let stopped_at = tx(&c, producer);
    wait_until("the producer moves on", 60, || {
        tx(&c, producer) >= stopped_at + 8
    })
    .await;
    c.start(b).await;
    let target = tx(&c, producer);
    c.wait_equal_tips(target.saturating_sub(1), 1, 120).await;
    c.shutdown().await;
}
