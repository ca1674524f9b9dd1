//! Every library's receiving end behind one trait, and the receive loop that every row
//! runs, written once: a competitor's receiver differs from another's only in how it maps
//! its library's receive onto [`Got`] (its [`BlockingSource`] or [`AsyncSource`] impl).
//! `shardcast bench` and the criterion benches (`benches/publish.rs`) run the same loops.

use std::future::Future;
use std::thread;
use std::time::Duration;

/// One receive, the same for every library.
#[derive(Debug)]
pub enum Got<M> {
    Msg(M),
    /// The library told this receiver it lost this many messages (tokio's and shardcast's
    /// `Lagged(n)`, async-broadcast's `Overflowed(n)`).
    Lost(u64),
    /// Nothing more will come.
    Closed,
}

/// A library's receiving end.
pub trait Source: Send + 'static {
    type Msg: Send;
}

/// A receiving end with a blocking receive.
pub trait BlockingSource: Source {
    fn next_blocking(&mut self) -> Got<Self::Msg>;
}

/// A receiving end with an async receive.
pub trait AsyncSource: Source {
    fn next_async(&mut self) -> impl Future<Output = Got<Self::Msg>> + Send;
}

/// What a receive loop saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages handed to the loop's callback.
    pub received: u64,
    /// Σ of what the library reported lost ([`Got::Lost`]).
    pub lost: u64,
}

/// The receive loop, blocking: hands every message to `on`, counts what the library reports
/// lost, and returns at [`Got::Closed`] or once `received + lost` reaches `limit`
/// (`u64::MAX`: until `Closed`). `on` returns how long to sleep after a message (the slow
/// subscriber), `None` to go on at once.
pub fn receive_blocking<S: BlockingSource>(
    src: &mut S,
    limit: u64,
    mut on: impl FnMut(S::Msg) -> Option<Duration>,
) -> Tally {
    let mut tally = Tally::default();
    while tally.received + tally.lost < limit {
        match src.next_blocking() {
            Got::Msg(m) => {
                tally.received += 1;
                if let Some(pause) = on(m) {
                    thread::sleep(pause);
                }
            }
            Got::Lost(n) => tally.lost += n,
            Got::Closed => break,
        }
    }
    tally
}

/// [`receive_blocking`] for a tokio task: the same loop, awaiting the receive and the pause.
pub async fn receive_async<S: AsyncSource>(
    src: &mut S,
    limit: u64,
    mut on: impl FnMut(S::Msg) -> Option<Duration> + Send,
) -> Tally {
    let mut tally = Tally::default();
    while tally.received + tally.lost < limit {
        match src.next_async().await {
            Got::Msg(m) => {
                tally.received += 1;
                if let Some(pause) = on(m) {
                    tokio::time::sleep(pause).await;
                }
            }
            Got::Lost(n) => tally.lost += n,
            Got::Closed => break,
        }
    }
    tally
}

// ---- the libraries -------------------------------------------------------------------------

impl<T: Clone + Send + 'static> Source for tokio::sync::broadcast::Receiver<T> {
    type Msg = T;
}

fn from_tokio_broadcast<T>(r: Result<T, tokio::sync::broadcast::error::RecvError>) -> Got<T> {
    use tokio::sync::broadcast::error::RecvError;
    match r {
        Ok(m) => Got::Msg(m),
        Err(RecvError::Lagged(n)) => Got::Lost(n),
        Err(RecvError::Closed) => Got::Closed,
    }
}

impl<T: Clone + Send + 'static> BlockingSource for tokio::sync::broadcast::Receiver<T> {
    fn next_blocking(&mut self) -> Got<T> {
        from_tokio_broadcast(self.blocking_recv())
    }
}

impl<T: Clone + Send + 'static> AsyncSource for tokio::sync::broadcast::Receiver<T> {
    async fn next_async(&mut self) -> Got<T> {
        from_tokio_broadcast(self.recv().await)
    }
}

impl<T: Send + 'static> Source for tokio::sync::mpsc::Receiver<T> {
    type Msg = T;
}

impl<T: Send + 'static> BlockingSource for tokio::sync::mpsc::Receiver<T> {
    fn next_blocking(&mut self) -> Got<T> {
        self.blocking_recv().map_or(Got::Closed, Got::Msg)
    }
}

impl<T: Send + 'static> AsyncSource for tokio::sync::mpsc::Receiver<T> {
    async fn next_async(&mut self) -> Got<T> {
        self.recv().await.map_or(Got::Closed, Got::Msg)
    }
}

/// Blocking only: crossbeam-channel has no async receive.
impl<T: Send + 'static> Source for crossbeam_channel::Receiver<T> {
    type Msg = T;
}

impl<T: Send + 'static> BlockingSource for crossbeam_channel::Receiver<T> {
    fn next_blocking(&mut self) -> Got<T> {
        self.recv().map_or(Got::Closed, Got::Msg)
    }
}

impl<T: Clone + Send + 'static> Source for async_broadcast::Receiver<T> {
    type Msg = T;
}

fn from_async_broadcast<T>(r: Result<T, async_broadcast::RecvError>) -> Got<T> {
    use async_broadcast::RecvError;
    match r {
        Ok(m) => Got::Msg(m),
        Err(RecvError::Overflowed(n)) => Got::Lost(n),
        Err(RecvError::Closed) => Got::Closed,
    }
}

impl<T: Clone + Send + 'static> BlockingSource for async_broadcast::Receiver<T> {
    fn next_blocking(&mut self) -> Got<T> {
        from_async_broadcast(self.recv_blocking())
    }
}

impl<T: Clone + Send + 'static> AsyncSource for async_broadcast::Receiver<T> {
    async fn next_async(&mut self) -> Got<T> {
        // `recv_direct`: the receive without the `Recv` future's boxing.
        from_async_broadcast(self.recv_direct().await)
    }
}

/// shardcast hands out a borrowed [`shardcast::Delivery`]; the loop gets a copy of its
/// payload (every harness payload is a few `Copy` words).
impl<T: Copy + Send + Sync + 'static> Source for shardcast::Subscriber<T> {
    type Msg = T;
}

fn from_shardcast<T: Copy>(r: Result<shardcast::Delivery<'_, T>, shardcast::RecvError>) -> Got<T> {
    use shardcast::RecvError;
    match r {
        Ok(d) => Got::Msg(*d.payload()),
        Err(RecvError::Lagged(n)) => Got::Lost(n),
        Err(RecvError::Closed) => Got::Closed,
    }
}

impl<T: Copy + Send + Sync + 'static> BlockingSource for shardcast::Subscriber<T> {
    fn next_blocking(&mut self) -> Got<T> {
        from_shardcast(self.recv_blocking())
    }
}

impl<T: Copy + Send + Sync + 'static> AsyncSource for shardcast::Subscriber<T> {
    async fn next_async(&mut self) -> Got<T> {
        from_shardcast(self.recv().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_counts_losses_and_stops_at_its_limit_or_closed() {
        let (tx, mut rx) = tokio::sync::broadcast::channel::<u64>(2);
        for i in 0..5 {
            tx.send(i).unwrap();
        }
        // Capacity 2: 0, 1 and 2 were overwritten; 3 and 4 are still held.
        let mut seen = Vec::new();
        let tally = receive_blocking(&mut rx, 4, |m| {
            seen.push(m);
            None
        });
        assert_eq!(tally, Tally { received: 1, lost: 3 });
        assert_eq!(seen, [3]);
        drop(tx);
        let tally = receive_blocking(&mut rx, u64::MAX, |m| {
            seen.push(m);
            None
        });
        assert_eq!(tally, Tally { received: 1, lost: 0 });
        assert_eq!(seen, [3, 4]);
    }
}
