//! Promise: the bridge's counters show in the stats of every bus it exports from or
//! imports into, and its Prometheus text, alone and in a bus's (one bridge or two), is
//! accepted by `promtool check metrics` without a single lint warning.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use shardcast::{Bus, Event, Subscription, Topic};
use shardcast_nats::{ExportOptions, ImportOptions};

use common::{bridge, within, NatsServer};

fn promtool_check(text: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| {
        panic!("promtool is required (Debian package `prometheus`) but cannot run: {e}")
    });
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool rejected the metrics:\n{report}\n---\n{text}");
    assert!(report.trim().is_empty(), "promtool lint warnings:\n{report}\n---\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_metrics_pass_promtool() {
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<u64> = Bus::builder().build().unwrap();
    let bus_b: Bus<u64> = Bus::builder().build().unwrap();
    let _export = a.export(&bus_a, "orders.>", ExportOptions::default()).unwrap();
    let mut sub = bus_b.subscribe(Subscription::all()).unwrap();
    let _import =
        b.import(bus_b.publisher().unwrap(), "orders.>", ImportOptions::default()).await.unwrap();
    within("subscribed", b.round_trip()).await.unwrap();
    let mut publisher = bus_a.publisher().unwrap();
    for id in 0..3 {
        let event = Event::new(Topic::new("orders.eu").unwrap(), id);
        within("ring space", publisher.publish(event)).await.unwrap();
    }
    for _ in 0..3 {
        within("next event", sub.recv()).await.unwrap();
    }

    for bridge in [&a, &b] {
        let text = bridge.prometheus_text();
        for series in ["exported_total", "imported_total", "decode_errors_total", "connected"] {
            let help = format!("# HELP shardcast_nats_{series} ");
            let kind = format!("# TYPE shardcast_nats_{series} ");
            assert!(text.contains(&help) && text.contains(&kind), "{series} lacks HELP/TYPE");
        }
        promtool_check(&text);
    }
    assert!(a.prometheus_text().contains("shardcast_nats_exported_total{origin="));
    let sa = a.stats();
    assert!(a
        .prometheus_text()
        .contains(&format!("shardcast_nats_exported_total{{origin=\"{}\"}} 3\n", sa.origin)));
    // What a daemon serves: the bus's own text, which carries the counters of every
    // bridge that exports from or imports into the bus.
    let (sb, stats_b) = (b.stats(), bus_b.stats());
    assert_eq!(stats_b.external, sb.metrics(), "bus b shows bridge b's counters");
    let text = stats_b.prometheus_text();
    assert!(
        text.contains(&format!("shardcast_nats_imported_total{{origin=\"{}\"}} 3\n", sb.origin))
    );
    promtool_check(&text);
    assert!(bus_a
        .stats()
        .prometheus_text()
        .contains(&format!("shardcast_nats_exported_total{{origin=\"{}\"}} 3\n", sa.origin)));
    // Two bridges on one bus: one family per name, a series per origin.
    let _second = a.export(&bus_b, "billing.>", ExportOptions::default()).unwrap();
    let text = bus_b.stats().prometheus_text();
    assert_eq!(text.matches("# TYPE shardcast_nats_imported_total counter").count(), 1);
    for origin in [&sa.origin, &sb.origin] {
        assert!(text.contains(&format!("shardcast_nats_connected{{origin=\"{origin}\"}} 1\n")));
    }
    promtool_check(&text);
}
