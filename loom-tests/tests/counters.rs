//! Counter pairs: a snapshot racing an open-then-close never shows closed > open. The
//! model fails if `CounterPair::close` is weakened from Release to Relaxed (loom then
//! lets the snapshot's Acquire load see the close without the open).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shardcast::stats::CounterPair;

#[test]
fn snapshot_never_shows_more_closed_than_open() {
    loom::model(|| {
        let pair = Arc::new(CounterPair::new());
        let lifetimes = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                for _ in 0..2 {
                    pair.open();
                    pair.close();
                }
            })
        };
        for _ in 0..2 {
            let (open, closed) = pair.snapshot();
            assert!(open >= closed, "open {open} < closed {closed}");
        }
        lifetimes.join().unwrap();
        assert_eq!(pair.snapshot(), (2, 2));
    });
}
