//! Promise: `StatsSnapshot::prometheus_text` is valid exposition format 0.0.4 whatever the
//! subscriber names and topic prefixes (quotes, backslashes, line feeds, any UTF-8), and
//! label values and counters read back exactly as given. Stable twin of the `stats_text`
//! fuzz target: the same checking function (`shardcast_models::stats_text`), driven by
//! proptest bytes and strings, plus the target's seed corpus and crash regressions.

use proptest::prelude::*;
use shardcast_models::stats_text::{ExternalInput, Float, Label};
use shardcast_models::{replay, stats_text};

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

/// External metric names that clash with the snapshot's own families (a summary's `_sum`
/// included), are empty, start with a digit, need `_total`, or repeat; label names that
/// repeat once sanitised; repeated series.
#[test]
fn external_names_that_clash_repeat_or_need_fixing() {
    let text = |s: &str| Label::Text(s.to_owned());
    let metric = |name: &str, gauge: bool, samples: Vec<(Vec<(Label, Label)>, Float)>| {
        ExternalInput { name: text(name), help: text("h\\n\n"), gauge, samples }
    };
    let one = |labels: &[(&str, &str)], v: u32| {
        (labels.iter().map(|(k, v)| (text(k), text(v))).collect(), Float::Millis(v))
    };
    let input = vec![
        metric("shardcast_published_total", false, vec![one(&[], 1)]),
        metric("shardcast_receive_latency_seconds_sum", true, vec![one(&[], 2)]),
        metric("", true, vec![one(&[], 3)]),
        metric("9lives", false, vec![one(&[("a-b", "1"), ("a_b", "2"), ("", "3")], 4)]),
        metric("9lives_total", true, vec![one(&[("a_b", "1")], 5), one(&[("a_b", "9")], 6)]),
        metric("app up", true, vec![one(&[("x", "\"\n\\")], 7), one(&[("x", "\"\n\\")], 8)]),
    ];
    assert!(matches!(stats_text::check_external(&input), shardcast_models::Verdict::Checked));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_print_valid_text(data in bytes()) {
        stats_text::check_bytes(&data);
    }

    #[test]
    fn external_metrics_print_valid_text(
        metrics in prop::collection::vec(
            (label(), any::<bool>(), prop::collection::vec(
                (prop::collection::vec((label(), label()), 0..4), any::<u32>()), 0..4)),
            0..6,
        ),
    ) {
        let input: Vec<ExternalInput> = metrics
            .into_iter()
            .map(|(name, gauge, samples)| ExternalInput {
                name: Label::Text(name),
                help: Label::Text(String::new()),
                gauge,
                samples: samples
                    .into_iter()
                    .map(|(labels, v)| {
                        let labels =
                            labels.into_iter().map(|(k, v)| (Label::Text(k), Label::Text(v)));
                        (labels.collect(), Float::Millis(v))
                    })
                    .collect(),
            })
            .collect();
        stats_text::check_external(&input);
    }

    #[test]
    fn names_and_prefixes_round_trip(
        names in prop::collection::vec(label(), 0..6),
        prefixes in prop::collection::vec(label(), 0..6),
    ) {
        stats_text::check_labels(&names, &prefixes);
    }
}
