//! What `subscribe` + drop costs with N live subscribers, and how long filling the bus
//! takes: the bus-side cost of a subscriber per connection.
//!
//! ```sh
//! cargo run --release --example subscribe_churn -- 0,1000,10000,50000
//! ```
//!
//! For each N: subscribes N idle subscribers (timed: "fill"), then subscribes and drops one
//! more, again and again, for about a second (at most 100 000 pairs) while the N stay
//! live, and prints the pairs per second. One shard, queues of 16 events (the per-queue
//! allocation is not what this measures), no traffic.

use std::time::{Duration, Instant};

use shardcast::{Bus, Subscription};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counts: Vec<usize> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "0,1000,10000,50000".to_owned())
        .split(',')
        .map(|n| n.trim().parse())
        .collect::<Result<_, _>>()?;
    println!("{:>8} {:>10} {:>12} {:>12}", "live", "fill ms", "pair us", "pairs/s");
    for live in counts {
        let bus: Bus<u64> = Bus::builder().dispatchers(1).queue_capacity(16).build()?;
        let started = Instant::now();
        let subs: Vec<_> =
            (0..live).map(|_| bus.subscribe(Subscription::all())).collect::<Result<_, _>>()?;
        let fill = started.elapsed();
        let started = Instant::now();
        let mut pairs = 0u64;
        while started.elapsed() < Duration::from_secs(1) && pairs < 100_000 {
            for _ in 0..16 {
                drop(bus.subscribe(Subscription::all())?);
            }
            pairs += 16;
        }
        let took = started.elapsed();
        println!(
            "{live:>8} {:>10.1} {:>12.2} {:>12.0}",
            fill.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e6 / pairs as f64,
            pairs as f64 / took.as_secs_f64()
        );
        drop(subs);
    }
    Ok(())
}
