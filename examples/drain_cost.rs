//! Per-delivery cost of the receive path and the dispatcher, isolated from scheduling:
//! fills N queues of K events (timing the dispatcher), then drains them with `recv().await`
//! on one current-thread runtime, beside the same loop over a `Vec<u64>` (the harness's
//! own cost). `cargo run --release --example drain_cost -- [N] [K] [ROUNDS]`; medians.

use shardcast::{Bus, Event, Overflow, Subscription, Topic};
use std::time::Instant;
#[derive(Clone, Copy, Debug)]
struct Msg {
    seq: u64,
    _t: u32,
}
fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(64);
    let k: u64 = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(16384);
    let rounds: usize = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(5);
    let clock = quanta::Clock::new();
    let mut res = vec![];
    let mut disp = vec![];
    for _ in 0..rounds {
        let bus: Bus<Msg> = Bus::builder().build().unwrap();
        let subs: Vec<_> = (0..n)
            .map(|_| {
                bus.subscribe(
                    Subscription::all().capacity(k as usize).overflow(Overflow::DropNewest),
                )
                .unwrap()
            })
            .collect();
        let mut p = bus.publisher().unwrap();
        let topic = Topic::new("bench.t0").unwrap();
        let t0 = Instant::now();
        for seq in 0..k {
            p.publish_blocking(Event::new(topic.clone(), Msg { seq, _t: 0 })).unwrap();
        }
        for s in &subs {
            while s.len() < k as usize {
                std::hint::spin_loop();
            }
        }
        disp.push(t0.elapsed().as_nanos() as f64 / (k as f64 * n as f64));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut gots: Vec<Vec<(u64, u64)>> = (0..n)
            .map(|_| {
                let mut v = vec![(1, 1); k as usize];
                v.clear();
                v
            })
            .collect();
        let t = Instant::now();
        rt.block_on(async {
            let mut hs = vec![];
            for (mut sub, mut got) in subs.into_iter().zip(gots.drain(..)) {
                let clock = clock.clone();
                hs.push(tokio::spawn(async move {
                    for _ in 0..k {
                        let d = sub.recv().await.unwrap();
                        got.push((d.payload().seq, clock.raw()));
                    }
                    got
                }));
            }
            for h in hs {
                std::hint::black_box(h.await.unwrap());
            }
        });
        let ns = t.elapsed().as_nanos() as f64 / (k as f64 * n as f64);
        res.push(ns);
    }
    let mut base = vec![];
    for _ in 0..rounds {
        let data: std::sync::Arc<Vec<u64>> = std::sync::Arc::new((0..k).collect());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut gots: Vec<Vec<(u64, u64)>> = (0..n)
            .map(|_| {
                let mut v = vec![(1, 1); k as usize];
                v.clear();
                v
            })
            .collect();
        let t = Instant::now();
        rt.block_on(async {
            let mut hs = vec![];
            for mut got in gots.drain(..) {
                let clock = clock.clone();
                let data = data.clone();
                hs.push(tokio::spawn(async move {
                    for i in 0..k as usize {
                        let v = std::hint::black_box(&data)[i];
                        got.push((v, clock.raw()));
                    }
                    got
                }));
            }
            for h in hs {
                std::hint::black_box(h.await.unwrap());
            }
        });
        base.push(t.elapsed().as_nanos() as f64 / (k as f64 * n as f64));
    }
    base.sort_by(|a, b| a.partial_cmp(b).unwrap());
    disp.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("dispatch: ns/delivery median {:.2}", disp[disp.len() / 2]);
    println!("base: {:.2}", base[base.len() / 2]);
    res.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("N={n} k={k}: receive ns/delivery min {:.2} median {:.2}", res[0], res[res.len() / 2]);
}
