//! A TCP fault proxy, after Toxiproxy: it sits on a link of the topology
//! (players → a replica, a replica → Redis), forwards bytes both ways, and
//! applies *toxics* while a fault lasts — latency with jitter, a bandwidth
//! cap, a black hole (nothing passes, connections stay open: a partition),
//! a reset of every connection, a data limit — per direction. Upstream is
//! from the side that connects to the side it reaches; downstream is back.
//!
//! Each connection is one task: per direction, a reader stamps each chunk
//! with its release time and a writer sends it when due, so latency delays
//! data without throttling it and order is kept.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::lane::timer::PreciseTimer;

const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction before the reader waits for the writer.
const IN_FLIGHT: usize = 64;

/// What happens to data going one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toxics {
    pub latency: Duration,
    pub jitter: Duration,
    /// Bytes per second; `None` is unlimited.
    pub rate: Option<u64>,
    /// Nothing passes (it waits, as on a partitioned network).
    pub blackhole: bool,
    /// The connection is closed once this many bytes went this way.
    pub limit_data: Option<u64>,
}

/// Both directions of a link, and whether it resets every connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    pub upstream: Toxics,
    pub downstream: Toxics,
    /// Open connections are reset and new ones refused (RST) while set.
    pub reset: bool,
}

/// A running proxy; it stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    state: watch::Sender<LinkState>,
    /// Cancelled to reset every connection opened before.
    generation: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:port` (0 = any free port) and forwards to `upstream`.
    pub async fn start(port: u16, upstream: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let (state, watching) = watch::channel(LinkState::default());
        let generation = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            upstream,
            watching,
            Arc::clone(&generation),
            stop.clone(),
        ));
        Ok(FaultProxy {
            addr,
            upstream,
            state,
            generation,
            stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Applies `state` to open and future connections.
    pub fn set(&self, state: LinkState) {
        if state.reset {
            let mut current = lock(&self.generation);
            current.cancel();
            *current = CancellationToken::new();
        }
        self.state.send_replace(state);
    }

    /// Back to a clean link.
    pub fn clear(&self) {
        self.set(LinkState::default());
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        lock(&self.generation).cancel();
    }
}

async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    state: watch::Receiver<LinkState>,
    generation: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((client, _)) = accepted else {
            // Out of descriptors or similar: give the system a moment.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if state.borrow().reset {
            reset(client);
            continue;
        }
        let killed = lock(&generation).clone();
        tokio::spawn(connection(client, upstream, state.clone(), killed));
    }
}

/// Closes with RST instead of FIN, as a crashed peer or a middlebox does.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    state: watch::Receiver<LinkState>,
    killed: CancellationToken,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let both = async {
        tokio::join!(
            pipe(&mut client_in, &mut server_out, state.clone(), |s| s
                .upstream),
            pipe(&mut server_in, &mut client_out, state, |s| s.downstream),
        )
    };
    let was_killed = tokio::select! {
        _ = killed.cancelled() => true,
        _ = both => false,
    };
    if was_killed {
        if let (Ok(client), Ok(server)) =
            (client_in.reunite(client_out), server_in.reunite(server_out))
        {
            reset(client);
            reset(server);
        }
    }
}

/// Copies one direction, applying its toxics.
async fn pipe(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    state: watch::Receiver<LinkState>,
    way: fn(&LinkState) -> Toxics,
) {
    let (chunks, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let mut reader_state = state.clone();
    let read = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut last_release = Instant::now();
        loop {
            wait_unless_blackholed(&mut reader_state, way).await;
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let toxics = way(&reader_state.borrow());
            // Never before the previous chunk: jitter must not reorder bytes.
            let release = (Instant::now() + delay(&toxics)).max(last_release);
            last_release = release;
            if chunks.send((release, buf[..n].to_vec())).await.is_err() {
                return;
            }
        }
    };
    let mut writer_state = state;
    let write = async move {
        let mut sent = 0u64;
        let mut free_at = Instant::now();
        let mut timer = Timer::default();
        while let Some((release, bytes)) = due.recv().await {
            timer.wait_until(release).await;
            wait_unless_blackholed(&mut writer_state, way).await;
            let toxics = way(&writer_state.borrow());
            if let Some(rate) = toxics.rate.filter(|r| *r > 0) {
                let cost = Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
                free_at = free_at.max(Instant::now()) + cost;
                timer.wait_until(free_at).await;
            }
            let allowed = match toxics.limit_data {
                Some(limit) => limit.saturating_sub(sent).min(bytes.len() as u64) as usize,
                None => bytes.len(),
            };
            if to.write_all(&bytes[..allowed]).await.is_err() {
                return;
            }
            sent += allowed as u64;
            if allowed < bytes.len() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

/// A writer's timer: precise (a latency toxic is what calibrates the
/// instrument, so it must add what it says, not that plus up to a
/// millisecond of tokio's timer), made only when a chunk is first early,
/// so a clean link costs no descriptor and no sleep.
#[derive(Default)]
struct Timer(Option<PreciseTimer>);

impl Timer {
    async fn wait_until(&mut self, when: Instant) {
        if when <= Instant::now() {
            return;
        }
        if self.0.is_none() {
            self.0 = PreciseTimer::new().ok();
        }
        let when = when.into_std();
        let slept = match &self.0 {
            Some(timer) => timer.sleep_until(when).await.is_ok(),
            None => false,
        };
        if !slept {
            tokio::time::sleep_until(when.into()).await;
        }
    }
}

fn delay(toxics: &Toxics) -> Duration {
    if toxics.jitter.is_zero() {
        return toxics.latency;
    }
    let jitter = toxics.jitter.as_secs_f64();
    let offset = rand::rng().random_range(-jitter..=jitter);
    Duration::from_secs_f64((toxics.latency.as_secs_f64() + offset).max(0.0))
}

async fn wait_unless_blackholed(
    state: &mut watch::Receiver<LinkState>,
    way: fn(&LinkState) -> Toxics,
) {
    while way(&state.borrow_and_update()).blackhole {
        if state.changed().await.is_err() {
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
