//! The publisher thread: random phases (bursts, idle gaps, saturation, paced) that drive the
//! bus, subscribers that join between two publishes, and the ledger counted before each
//! publish.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use shardcast::{Alias, Event, Overflow, Publisher, Topic, Uuid};

use super::plan::{
    body, route, Msg, Payload, Plan, Rng, Style, ThreadRecv, ALIASES, POLICIES, ROUTES, STYLES,
    TOPICS,
};
use super::receive::{async_receiver, thread_receiver, Report, Tracker};
use super::shared::{Ledger, Shared};

pub(super) const MAX_LIVE: usize = 20;

#[derive(Clone, Copy, Debug)]
pub(super) enum Phase {
    /// This many events back to back.
    Burst(u64),
    /// Nothing published.
    Idle(Duration),
    /// As fast as the ring takes them.
    Saturation(Duration),
    /// `rate` events per second.
    Paced { rate: u64, length: Duration },
}

impl Phase {
    fn random(rng: &mut Rng) -> Phase {
        match rng.range(0, 99) {
            0..=29 => Phase::Burst(rng.range(100, 5000)),
            30..=44 => Phase::Idle(rng.millis(20, 800)),
            45..=64 => Phase::Saturation(rng.millis(100, 1500)),
            _ => Phase::Paced { rate: rng.range(500, 50_000), length: rng.millis(200, 2000) },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Burst(_) => "burst",
            Phase::Idle(_) => "idle",
            Phase::Saturation(_) => "saturation",
            Phase::Paced { .. } => "paced",
        }
    }
}

#[derive(Default, Clone, Copy)]
pub(super) struct PhaseTally {
    pub(super) runs: u64,
    pub(super) events: u64,
    pub(super) time: Duration,
}

/// What the publisher did, for the summary.
#[derive(Default)]
pub(super) struct PublisherTally {
    pub(super) events: u64,
    pub(super) kinds: BTreeMap<&'static str, u64>,
    pub(super) phases: BTreeMap<&'static str, PhaseTally>,
    pub(super) threads: Vec<JoinHandle<()>>,
}

pub(super) struct Publishing {
    pub(super) shared: Arc<Shared>,
    pub(super) publisher: Publisher<Payload>,
    pub(super) rng: Rng,
    pub(super) topics: Vec<Topic>,
    pub(super) aliases: Vec<Alias>,
    /// The soak's model of the shards' binding cache (alias index → route).
    pub(super) bindings: HashMap<usize, Uuid>,
    /// Live subscribers the ledger counts for.
    pub(super) tracked: Vec<(Arc<Plan>, Arc<Ledger>)>,
    pub(super) reports: Sender<Report>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) next_join: Instant,
    pub(super) tally: PublisherTally,
}

impl Publishing {
    pub(super) fn new(
        shared: Arc<Shared>,
        publisher: Publisher<Payload>,
        rng: Rng,
        reports: Sender<Report>,
        runtime: tokio::runtime::Handle,
    ) -> Publishing {
        let topics = TOPICS.iter().map(|t| Topic::new(t).expect("the soak's topics are valid"));
        let aliases =
            (0..ALIASES).map(|i| Alias::new("soak", &format!("session-{i}")).expect("valid alias"));
        Publishing {
            shared,
            publisher,
            rng,
            topics: topics.collect(),
            aliases: aliases.collect(),
            bindings: HashMap::new(),
            tracked: Vec::new(),
            reports,
            runtime,
            next_join: Instant::now(),
            tally: PublisherTally::default(),
        }
    }

    /// Subscribes the keepers (every policy, threads and tasks, until the close) and the
    /// `$SYS.>` subscriber, then runs random phases until `deadline` or a violation. Hands
    /// the publisher back: dropping it would close the bus, which the main thread does.
    pub(super) fn run(mut self, deadline: Instant) -> (PublisherTally, Publisher<Payload>) {
        self.start_keepers();
        while Instant::now() < deadline && !self.shared.failures.any() {
            let phase = Phase::random(&mut self.rng);
            if !self.run_phase(phase, deadline) {
                break;
            }
        }
        self.shared.publisher_busy.store(false, Ordering::SeqCst);
        (self.tally, self.publisher)
    }

    fn start_keepers(&mut self) {
        let plan = Plan::sys(self.index(), &mut self.rng);
        self.start_subscriber(plan);
        let threads = [ThreadRecv::Recv, ThreadRecv::RecvTimeout, ThreadRecv::TryRecv];
        for overflow in POLICIES {
            for style in [Style::Thread(self.rng.pick(&threads)), Style::Async] {
                let plan = Plan::random(self.index(), &mut self.rng, overflow, style, None);
                self.start_subscriber(plan);
            }
        }
    }

    fn index(&self) -> usize {
        self.shared.created.load(Ordering::SeqCst)
    }

    /// Runs one phase; `false` once the run must end (deadline, violation, bus closed).
    fn run_phase(&mut self, phase: Phase, deadline: Instant) -> bool {
        let start = Instant::now();
        let events_before = self.tally.events;
        let go_on = match phase {
            Phase::Burst(n) => self.publish_n(n),
            Phase::Idle(length) => self.idle(deadline.min(start + length)),
            Phase::Saturation(length) => self.saturate(deadline.min(start + length)),
            Phase::Paced { rate, length } => self.paced(rate, deadline.min(start + length)),
        };
        let tally = self.tally.phases.entry(phase.name()).or_default();
        tally.runs += 1;
        tally.events += self.tally.events - events_before;
        tally.time += start.elapsed();
        go_on
    }

    fn publish_n(&mut self, n: u64) -> bool {
        for i in 0..n {
            if i % 64 == 0 && !self.between_publishes() {
                return false;
            }
            if !self.publish_one() {
                return false;
            }
        }
        true
    }

    fn idle(&mut self, until: Instant) -> bool {
        self.shared.publisher_busy.store(false, Ordering::SeqCst);
        while Instant::now() < until {
            if !self.between_publishes() {
                return false;
            }
            thread::sleep(Duration::from_millis(5).min(until - Instant::now().min(until)));
        }
        self.shared.publisher_busy.store(true, Ordering::SeqCst);
        true
    }

    fn saturate(&mut self, until: Instant) -> bool {
        while Instant::now() < until {
            if !self.publish_n(256) {
                return false;
            }
        }
        true
    }

    fn paced(&mut self, rate: u64, until: Instant) -> bool {
        let start = Instant::now();
        let mut sent = 0;
        while Instant::now() < until {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            // Catch up after a stall, but not by more than a small burst.
            let n = due.saturating_sub(sent).min(1000);
            if !self.publish_n(n) || !self.between_publishes() {
                return false;
            }
            sent += n;
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Between two publishes: subscribers join. `false` once the run must end.
    fn between_publishes(&mut self) -> bool {
        if self.shared.failures.any() {
            return false;
        }
        self.tracked.retain(|(_, ledger)| !ledger.gone.load(Ordering::SeqCst));
        let now = Instant::now();
        if now >= self.next_join && self.tracked.len() < MAX_LIVE {
            self.next_join = now + self.rng.millis(20, 400);
            let plan = self.joiner();
            return self.start_subscriber(plan);
        }
        true
    }

    /// A subscriber that joins mid-run and leaves after a while. `Block` subscribers stay
    /// a minority (each one can stall its shard).
    fn joiner(&mut self) -> Plan {
        let blocks = self.tracked.iter().filter(|(p, _)| p.overflow == Overflow::Block).count();
        let mut overflow = self.rng.pick(&POLICIES);
        if overflow == Overflow::Block && (blocks + 1) * 3 > self.tracked.len() + 1 {
            overflow = self.rng.pick(&POLICIES[..3]);
        }
        let style = self.rng.pick(&STYLES);
        let leave_after = Some(self.rng.millis(50, 20_000));
        Plan::random(self.index(), &mut self.rng, overflow, style, leave_after)
    }

    /// Subscribes on this thread, between two publishes, so the ledger counts exactly the
    /// events from `next_seq()` on; then hands the subscriber to its thread or task.
    fn start_subscriber(&mut self, plan: Plan) -> bool {
        let plan = Arc::new(plan);
        let sub = match self.shared.bus.subscribe(plan.subscription()) {
            Ok(sub) => sub,
            Err(e) => {
                if !self.shared.bus.is_closed() {
                    self.shared.fail(format!("{plan}: subscribe failed: {e}"));
                }
                return false;
            }
        };
        let ledger = Arc::new(Ledger::default());
        if !plan.sys {
            self.tracked.push((Arc::clone(&plan), Arc::clone(&ledger)));
        }
        let capacity = plan.capacity as u64;
        let live = self.shared.live_capacity.fetch_add(capacity, Ordering::SeqCst) + capacity;
        self.shared.peak_capacity.fetch_max(live, Ordering::SeqCst);
        let tracker = Tracker::new(Arc::clone(&plan), ledger, &self.shared, self.reports.clone());
        let rng = Rng(plan.seed);
        match plan.style {
            Style::Async => {
                self.runtime.spawn(async_receiver(sub, tracker, rng));
            }
            Style::Thread(how) => {
                let spawned = thread::Builder::new()
                    .name(format!("soak-{}", plan.name))
                    .spawn(move || thread_receiver(sub, tracker, rng, how));
                match spawned {
                    Ok(handle) => self.tally.threads.push(handle),
                    Err(e) => {
                        self.shared.fail(format!("{plan}: cannot spawn its thread: {e}"));
                        return false;
                    }
                }
            }
        }
        self.shared.created.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Draws, counts in every ledger, then publishes one event. `false` if the bus closed.
    fn publish_one(&mut self) -> bool {
        let id = self.publisher.next_seq();
        let topic = self.topics[self.rng.range(0, TOPICS.len() as u64 - 1) as usize].clone();
        let (event, route) = self.draw_event(topic.clone(), id);
        for (plan, ledger) in &self.tracked {
            ledger.count(plan.spec.verdict(&topic, route, id));
        }
        match self.publisher.publish_blocking(event) {
            Ok(seq) if seq == id => {}
            Ok(seq) => self.shared.fail(format!("publish returned seq {seq}; next_seq was {id}")),
            Err(_) => return false,
        }
        self.tally.events += 1;
        self.shared.published.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// An event of a random kind, and the route the shards must resolve for it. The model
    /// is `routing::BindingCache` without evictions (`BINDING_CAPACITY` > `ALIASES`).
    fn draw_event(&mut self, topic: Topic, id: u64) -> (Event<Payload>, Option<Uuid>) {
        let alias = self.rng.range(0, ALIASES as u64 - 1) as usize;
        let some_route = route(self.rng.range(0, ROUTES as u64 - 1) as usize);
        let (kind, route) = match self.rng.range(0, 99) {
            0..=34 => ("plain", None),
            35..=49 => ("routed", Some(some_route)),
            50..=57 => {
                self.bindings.insert(alias, some_route);
                ("binds", Some(some_route))
            }
            58..=95 => ("late-bound", self.bindings.get(&alias).copied()),
            _ => ("unbinds", self.bindings.remove(&alias)),
        };
        *self.tally.kinds.entry(kind).or_default() += 1;
        let payload = Payload::Msg(Msg { id, route, body: body(id) });
        let mut event = Event::new(topic, payload);
        let alias = self.aliases[alias].clone();
        event = match kind {
            "routed" => event.with_route(some_route),
            "binds" => event.with_alias(alias).with_route(some_route).binds(),
            "late-bound" => event.with_alias(alias),
            "unbinds" => event.with_alias(alias).unbinds(),
            _ => event,
        };
        (event, route)
    }
}
