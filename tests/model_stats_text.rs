//! Promise: `StatsSnapshot::prometheus_text` is valid exposition format 0.0.4 whatever the
//! subscriber names and topic prefixes (quotes, backslashes, line feeds, any UTF-8), and
//! label values and counters read back exactly as given. Stable twin of the `stats_text`
//! fuzz target: the same checking function (`ringcast_models::stats_text`), driven by
//! proptest bytes and strings, plus the target's seed corpus and crash regressions.

use proptest::prelude::*;
use ringcast_models::{replay, stats_text};

#[test]
fn seed_corpus_replays() {
    replay("corpus", "stats_text", true, stats_text::check_bytes);
}

#[test]
fn crash_regressions_replay() {
    replay("regressions", "stats_text", false, stats_text::check_bytes);
}

/// Bytes that decode to interesting inputs often: the characters escaping is about, and
/// small values.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => prop::sample::select(b"\"\\\n\r{}=, a0\x01\x02\x03".to_vec()),
        2 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..600)
}

/// Strings full of what escaping is about.
fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[\"\\\\\n\r\t{}=, #a_é\u{2028}]{0,12}",
        1 => any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_print_valid_text(data in bytes()) {
        stats_text::check_bytes(&data);
    }

    #[test]
    fn names_and_prefixes_round_trip(
        names in prop::collection::vec(label(), 0..6),
        prefixes in prop::collection::vec(label(), 0..6),
    ) {
        stats_text::check_labels(&names, &prefixes);
    }
}
