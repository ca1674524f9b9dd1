//! Promise: every subscriber receives exactly what a plain model of its queue predicts,
//! whatever the sequence of subscribes, publishes (with late binding), receives, drops and
//! closes: the same events in order with their resolved routes, `Lagged(n)` exactly where
//! and as large as the losses its overflow policy caused, then `Closed`; and the shards'
//! counters add up. Stable twin of the `bus_ops` fuzz target: the same checking function
//! (`shardcast_models::bus_ops`), driven by proptest bytes, plus the target's seed corpus
//! and crash regressions.

use proptest::prelude::*;
use shardcast_models::{bus_ops, replay};

#[test]
fn seed_corpus_replays() {
    replay("corpus", "bus_ops", true, bus_ops::check_bytes);
}

#[test]
fn crash_regressions_replay() {
    replay("regressions", "bus_ops", false, bus_ops::check_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn bus_agrees_with_the_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        bus_ops::check_bytes(&data);
    }
}
