//! A TCP switch for tests of several server instances behind one address,
//! as a load balancer or a DNS change shows them to a kiosk: it listens on
//! `127.0.0.1:0` and forwards each new connection to the upstream chosen
//! now. [`Switch::route_to`] picks another upstream and cuts the open
//! connections (reset on both sides), so the client's next request dials
//! the new one, as after a failover.
//!
//! It can also hold answers: while [`Switch::hold_answers`] is on, what an
//! upstream sends is read and kept, not forwarded, so a request reaches
//! the server and is handled while its answer waits "in the network". A
//! test waits for [`SwitchStats::held_bytes`] to grow (the server has
//! answered), checks the effect elsewhere, and kills the server: an
//! upstream that ends while answers are held takes them with it (they are
//! dropped and the client's connection reset), so the client never learns
//! that its request went through. Lifting the hold forwards what was kept,
//! in order.
//!
//! Works at the TCP level, so TLS passes through untouched. Like
//! [`crate::proxy::FaultProxy`] (whose upstream is fixed) it runs on its own
//! thread with its own runtime, and dropping it stops the listener and
//! ends every connection. Bounds: at most `CONNECTIONS_MAX` connections
//! served at once (more wait in the kernel backlog), chunks of
//! `CHUNK_BYTES`, at most `HELD_BYTES_MAX` held per connection (past that
//! the upstream is no longer read until the hold is lifted).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

const CONNECTIONS_MAX: usize = 256;
const CHUNK_BYTES: usize = 16 * 1024;
const HELD_BYTES_MAX: usize = 1024 * 1024;
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters; they change before the client could observe the effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections reset because the upstream could not be dialled.
    pub upstream_failed: u64,
    /// Connections reset by [`Switch::route_to`] or [`Switch::cut_all`].
    pub cut: u64,
    /// Connections whose upstream ended while answers were held; the
    /// held bytes were dropped and the client reset.
    pub answers_lost: u64,
    /// Connections being served now.
    pub active: u64,
    /// Bytes held now (answers read from upstreams, not forwarded).
    pub held_bytes: u64,
    pub bytes_to_upstream: u64,
    pub bytes_to_client: u64,
}

#[derive(Debug, Clone, Copy)]
struct Control {
    upstream: SocketAddr,
    hold: bool,
    /// Bumped by every cut: connections accepted under an older epoch end.
    cut_epoch: u64,
    shutdown: bool,
}

struct Shared {
    addr: SocketAddr,
    control: watch::Sender<Control>,
    stats: watch::Sender<SwitchStats>,
}

/// A running switch. Dropping it shuts it down.
pub struct Switch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Switch {
    /// Starts a switch to `upstream` on `127.0.0.1:0`; returns once it
    /// listens. Callable inside or outside a tokio runtime.
    pub fn start(upstream: SocketAddr) -> io::Result<Switch> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (control, _) = watch::channel(Control { upstream, hold: false, cut_epoch: 0, shutdown: false });
        let (stats, _) = watch::channel(SwitchStats::default());
        let shared = Arc::new(Shared { addr, control, stats });
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name(format!("switch-{}", addr.port())).spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let listener = match runtime.block_on(async { TcpListener::from_std(listener) }) {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                runtime.block_on(accept_loop(shared, listener));
            })?
        };
        ready_rx.recv().unwrap_or_else(|_| Err(io::Error::other("the switch thread died starting")))?;
        Ok(Switch { shared, thread: Some(thread) })
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Where new connections go now.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.control.borrow().upstream
    }

    /// Sends new connections to `upstream` and cuts the open ones (also
    /// when `upstream` is the current one: a failover as the client sees it).
    pub fn route_to(&self, upstream: SocketAddr) {
        self.shared.control.send_modify(|c| {
            c.upstream = upstream;
            c.cut_epoch += 1;
        });
    }

    /// Cuts every open connection (reset on both sides).
    pub fn cut_all(&self) {
        self.shared.control.send_modify(|c| c.cut_epoch += 1);
    }

    /// `true`: answers from upstreams are kept, not forwarded; `false`:
    /// what was kept is forwarded, in order, and answers flow again.
    pub fn hold_answers(&self, hold: bool) {
        self.shared.control.send_modify(|c| c.hold = hold);
    }

    pub fn stats(&self) -> SwitchStats {
        *self.shared.stats.borrow()
    }

    /// Waits until the counters satisfy `condition`, at most `timeout`;
    /// the snapshot that did, or an error naming the last one.
    pub async fn wait_for_stats(
        &self,
        timeout: Duration,
        condition: impl FnMut(&SwitchStats) -> bool,
    ) -> anyhow::Result<SwitchStats> {
        let mut rx = self.shared.stats.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(condition)).await {
            Ok(Ok(stats)) => Ok(*stats),
            _ => anyhow::bail!(
                "switch {}: condition not met within {timeout:?}; counters {:?}",
                self.addr(),
                self.stats()
            ),
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shared.control.send_modify(|c| c.shutdown = true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut tasks = JoinSet::new();
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut rx = shared.control.subscribe();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
            _ = rx.wait_for(|c| c.shutdown) => break,
        };
        let client = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(_) => {
                    // Out of descriptors, say: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            Some(_) = tasks.join_next() => continue,
            _ = rx.wait_for(|c| c.shutdown) => break,
        };
        let control = *rx.borrow();
        shared.stats.send_modify(|s| {
            s.accepted += 1;
            s.active += 1;
        });
        let shared = shared.clone();
        tasks.spawn(async move {
            serve(&shared, client, control).await;
            shared.stats.send_modify(|s| s.active -= 1);
            drop(permit);
        });
    }
    drop(listener);
    // Every connection task watches the shutdown flag and ends at once.
    while tasks.join_next().await.is_some() {}
}

/// Answers kept while the hold is on; the counter follows them, also
/// when the connection ends with them.
struct Held<'a> {
    bytes: Vec<u8>,
    stats: &'a watch::Sender<SwitchStats>,
}

impl Held<'_> {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        self.stats.send_modify(|s| s.held_bytes += chunk.len() as u64);
    }

    fn clear(&mut self) {
        let n = self.bytes.len() as u64;
        self.bytes.clear();
        self.stats.send_modify(|s| s.held_bytes -= n);
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Resets a connection: `SO_LINGER` 0 makes the close send an RST.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Resolves when a connection accepted under `epoch` must end.
async fn interrupted(rx: &mut watch::Receiver<Control>, epoch: u64) {
    let _ = rx.wait_for(|c| c.shutdown || c.cut_epoch != epoch).await;
}

enum End {
    /// Both directions finished cleanly.
    Closed,
    /// Cut by the test, or a peer failed: reset both sides.
    Reset,
    /// The upstream ended with answers held: they are lost.
    AnswersLost,
}

async fn serve(shared: &Shared, client: TcpStream, control: Control) {
    let mut rx = shared.control.subscribe();
    let epoch = control.cut_epoch;
    let dial = tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(control.upstream));
    let upstream = tokio::select! {
        dialled = dial => match dialled {
            Ok(Ok(upstream)) => upstream,
            _ => {
                shared.stats.send_modify(|s| s.upstream_failed += 1);
                reset(client);
                return;
            }
        },
        _ = interrupted(&mut rx, epoch) => {
            shared.stats.send_modify(|s| s.cut += 1);
            reset(client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client, mut upstream) = (client, upstream);
    let end = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        let requests = async {
            let mut buf = vec![0u8; CHUNK_BYTES];
            loop {
                match client_read.read(&mut buf).await {
                    Ok(0) => {
                        let _ = upstream_write.shutdown().await;
                        return true;
                    }
                    Ok(n) => {
                        shared.stats.send_modify(|s| s.bytes_to_upstream += n as u64);
                        if upstream_write.write_all(&buf[..n]).await.is_err() {
                            return false;
                        }
                    }
                    Err(_) => return false,
                }
            }
        };
        let answers = async {
            let mut control_rx = shared.control.subscribe();
            let mut held = Held { bytes: Vec::new(), stats: &shared.stats };
            let mut buf = vec![0u8; CHUNK_BYTES];
            loop {
                let hold = control_rx.borrow_and_update().hold;
                if !hold && !held.bytes.is_empty() {
                    let n = held.bytes.len() as u64;
                    shared.stats.send_modify(|s| s.bytes_to_client += n);
                    let written = client_write.write_all(&held.bytes).await;
                    held.clear();
                    if written.is_err() {
                        return End::Reset;
                    }
                    continue;
                }
                let room =
                    if hold { HELD_BYTES_MAX.saturating_sub(held.bytes.len()).min(CHUNK_BYTES) } else { CHUNK_BYTES };
                let read = tokio::select! {
                    read = upstream_read.read(&mut buf[..room]), if room > 0 => read,
                    // The hold lifted (or put on): look again.
                    changed = control_rx.changed(), if hold => match changed {
                        Ok(()) => continue,
                        Err(_) => return End::Reset,
                    },
                };
                match read {
                    Ok(0) | Err(_) if !held.bytes.is_empty() => return End::AnswersLost,
                    Ok(0) => {
                        let _ = client_write.shutdown().await;
                        return End::Closed;
                    }
                    Err(_) => return End::Reset,
                    // Decided now, not before the read: a hold put on
                    // while the read waited applies to what it brought.
                    Ok(n) if control_rx.borrow_and_update().hold => held.push(&buf[..n]),
                    Ok(n) => {
                        shared.stats.send_modify(|s| s.bytes_to_client += n as u64);
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            return End::Reset;
                        }
                    }
                }
            }
        };
        tokio::pin!(requests, answers);
        let mut requests_done = false;
        tokio::select! {
            end = async {
                loop {
                    tokio::select! {
                        clean = &mut requests, if !requests_done => {
                            if !clean {
                                return End::Reset;
                            }
                            requests_done = true;
                        }
                        end = &mut answers => return end,
                    }
                }
            } => end,
            _ = interrupted(&mut rx, epoch) => {
                shared.stats.send_modify(|s| s.cut += 1);
                End::Reset
            }
        }
    };
    match end {
        End::Closed => {}
        End::Reset => {
            reset(client);
            reset(upstream);
        }
        End::AnswersLost => {
            shared.stats.send_modify(|s| s.answers_lost += 1);
            reset(client);
            reset(upstream);
        }
    }
}
