//! One link at work: its listener, the connections it forwards, and the toxics acting on
//! them. Each accepted connection is paired with one to the upstream and two pumps copy
//! bytes (client → server is `upstream`, server → client `downstream`), each asking the
//! link's current toxics, chunk by chunk, whether to wait, hold or cut.
//!
//! The first time a toxic acts on a connection it says so: a log line and an INTERNAL
//! span `chaosproxy toxic` (its link, toxic, effect, connection and peers), which ends
//! when the toxic is removed or the connection closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::toxics::{Effect, LinkSpec, LinkStatus, Stream, Toxic};

/// A link's toxics; every connection watches them.
pub type Toxics = Arc<Vec<Toxic>>;

#[derive(Default)]
struct Counters {
    open: AtomicU64,
    total: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    touched: AtomicU64,
}

/// A link and its state.
pub struct Link {
    pub spec: LinkSpec,
    toxics: watch::Sender<Toxics>,
    counters: Counters,
}

impl Link {
    pub fn new(spec: LinkSpec) -> Arc<Link> {
        Arc::new(Link {
            spec,
            toxics: watch::channel(Arc::new(Vec::new())).0,
            counters: Counters::default(),
        })
    }

    pub fn toxics(&self) -> Toxics {
        self.toxics.borrow().clone()
    }

    /// Adds a toxic; `Err` when one of that name is there already.
    pub fn add(&self, t: Toxic) -> Result<(), String> {
        let mut refused = None;
        self.toxics.send_modify(|list| {
            if list.iter().any(|x| x.name == t.name) {
                refused = Some(format!(
                    "{} already has a toxic named {}",
                    self.spec.name, t.name
                ));
            } else {
                let mut v = (**list).clone();
                v.push(t.clone());
                *list = Arc::new(v);
            }
        });
        match refused {
            Some(e) => Err(e),
            None => {
                tracing::info!(link = %self.spec.name, toxic = %t.name, effect = t.effect.kind(), stream = ?t.stream, toxicity = t.toxicity, "toxic added: {}", t.effect.describe());
                Ok(())
            }
        }
    }

    /// Removes a toxic; whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        let mut found = false;
        self.toxics.send_if_modified(|list| {
            found = list.iter().any(|x| x.name == name);
            if found {
                *list = Arc::new(list.iter().filter(|x| x.name != name).cloned().collect());
            }
            found
        });
        if found {
            tracing::info!(link = %self.spec.name, toxic = name, "toxic removed");
        }
        found
    }

    pub fn status(&self) -> LinkStatus {
        let c = &self.counters;
        LinkStatus {
            name: self.spec.name.clone(),
            listen: self.spec.listen.clone(),
            upstream: self.spec.upstream.clone(),
            toxics: (*self.toxics()).clone(),
            connections_open: c.open.load(Ordering::Relaxed),
            connections_total: c.total.load(Ordering::Relaxed),
            bytes_upstream: c.up.load(Ordering::Relaxed),
            bytes_downstream: c.down.load(Ordering::Relaxed),
            connections_touched: c.touched.load(Ordering::Relaxed),
        }
    }

    /// Accepts connections until the process ends.
    pub async fn serve(self: Arc<Link>, listener: TcpListener) {
        let mut next = 0u64;
        loop {
            let (client, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(link = %self.spec.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            next += 1;
            let conn = Arc::new(Conn {
                id: next,
                peer,
                link: self.clone(),
                rolls: Mutex::new(HashMap::new()),
                spans: Mutex::new(HashMap::new()),
            });
            tokio::spawn(conn.run(client));
        }
    }
}

/// How long the proxy waits to reach an upstream. Links are local paths (loopback, the
/// project's Docker network): a live upstream answers in well under a millisecond. A
/// dead one (a killed container's address answers nothing) is reported to the client
/// with a reset after this, instead of holding it: a proxy must not turn a dead
/// dependency into a slow one (the gateway's own connect timeout is 2 s).
const DIAL: Duration = Duration::from_secs(1);

/// How a connection is ended by a toxic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Close,
    Reset,
}

/// One client connection through a link.
struct Conn {
    id: u64,
    peer: SocketAddr,
    link: Arc<Link>,
    /// Whether each toxic acts on this connection (its toxicity, rolled once).
    rolls: Mutex<HashMap<String, bool>>,
    /// The span of each toxic that has acted on it, open while it acts.
    spans: Mutex<HashMap<String, tracing::Span>>,
}

impl Conn {
    /// The toxics of `list` that act on this connection in direction `dir`.
    fn acting<'a>(&self, list: &'a [Toxic], dir: Stream) -> Vec<&'a Toxic> {
        let mut rolls = self.rolls.lock().unwrap_or_else(|e| e.into_inner());
        list.iter()
            .filter(|t| t.stream.covers(dir))
            .filter(|t| {
                *rolls
                    .entry(t.name.clone())
                    .or_insert_with(|| t.toxicity >= 1.0 || rand::random::<f64>() < t.toxicity)
            })
            .collect()
    }

    /// Says, once per toxic, that it acts on this connection.
    fn mark(&self, t: &Toxic) {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        if spans.contains_key(&t.name) {
            return;
        }
        let link = &self.link.spec;
        let (host, port) = link
            .upstream
            .rsplit_once(':')
            .unwrap_or((&link.upstream, ""));
        let span = tracing::info_span!(
            parent: None,
            "chaosproxy toxic",
            otel.name = format!("chaosproxy {}", t.effect.kind()),
            otel.kind = "internal",
            chaos.injected = true,
            chaos.link = %link.name,
            chaos.toxic = %t.name,
            chaos.toxic.type = t.effect.kind(),
            chaos.toxic.stream = ?t.stream,
            chaos.connection = self.id,
            network.peer.address = %self.peer.ip(),
            network.peer.port = self.peer.port(),
            server.address = host,
            server.port = port,
        );
        tracing::info!(
            link = %link.name,
            toxic = %t.name,
            effect = t.effect.kind(),
            connection = self.id,
            client = %self.peer,
            "toxic acts on a connection: {}",
            t.effect.describe()
        );
        self.link.counters.touched.fetch_add(1, Ordering::Relaxed);
        spans.insert(t.name.clone(), span);
    }

    /// Ends the spans of toxics no longer on the link.
    fn forget_removed(&self, list: &[Toxic]) {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        spans.retain(|name, _| list.iter().any(|t| &t.name == name));
    }

    async fn run(self: Arc<Conn>, client: TcpStream) {
        let c = &self.link.counters;
        c.open.fetch_add(1, Ordering::Relaxed);
        c.total.fetch_add(1, Ordering::Relaxed);
        self.forward(client).await;
        c.open.fetch_sub(1, Ordering::Relaxed);
    }

    async fn forward(self: &Arc<Conn>, client: TcpStream) {
        let mut toxics = self.link.toxics.subscribe();
        // Before the upstream is dialled: a lost connection, or one held by a partition.
        loop {
            let list = toxics.borrow_and_update().clone();
            let acting = self.acting(&list, Stream::Both);
            if let Some(t) = acting.iter().find(|t| t.effect == Effect::Loss) {
                self.mark(t);
                reset(&client);
                return;
            }
            let Some((t, limit)) = acting.iter().find_map(|t| t.hold().map(|l| (*t, l))) else {
                break;
            };
            self.mark(t);
            tokio::select! {
                r = toxics.changed() => if r.is_err() { return },
                _ = sleep_or_never(limit) => return,
            }
            self.forget_removed(&toxics.borrow());
        }
        let server = match tokio::time::timeout(DIAL, TcpStream::connect(&self.link.spec.upstream))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::warn!(link = %self.link.spec.name, error = %e, "upstream refused; resetting the client");
                reset(&client);
                return;
            }
            Err(_) => {
                tracing::warn!(link = %self.link.spec.name, "upstream did not answer within a second; resetting the client");
                reset(&client);
                return;
            }
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (end_tx, end_rx) = watch::channel(End::Open);
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let up = tokio::spawn(pump(
            self.clone(),
            Stream::Upstream,
            cr,
            sw,
            end_tx.clone(),
            end_rx.clone(),
        ));
        let down = tokio::spawn(pump(
            self.clone(),
            Stream::Downstream,
            sr,
            cw,
            end_tx.clone(),
            end_rx.clone(),
        ));
        // The reset toxic and the end of spans of removed toxics.
        let watcher = tokio::spawn(watch_resets(self.clone(), toxics, end_tx));
        let _ = up.await;
        let _ = down.await;
        watcher.abort();
    }
}

/// Sleeps for `d`, or forever when there is none.
async fn sleep_or_never(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Closes `s` with a TCP reset instead of a FIN.
fn reset(s: &TcpStream) {
    #[allow(deprecated)]
    let _ = s.set_linger(Some(Duration::ZERO));
}

/// Ends the connection with a reset when a reset toxic's time comes.
async fn watch_resets(
    conn: Arc<Conn>,
    mut toxics: watch::Receiver<Toxics>,
    end: watch::Sender<End>,
) {
    loop {
        let list = toxics.borrow_and_update().clone();
        conn.forget_removed(&list);
        let reset_after =
            conn.acting(&list, Stream::Both)
                .into_iter()
                .find_map(|t| match t.effect {
                    Effect::Reset { after_ms } => Some((t.clone(), after_ms)),
                    _ => None,
                });
        match reset_after {
            Some((t, after_ms)) => {
                conn.mark(&t);
                tokio::select! {
                    r = toxics.changed() => if r.is_err() { return },
                    _ = tokio::time::sleep(Duration::from_millis(after_ms)) => {
                        let _ = end.send(End::Reset);
                        return;
                    }
                }
            }
            None => {
                if toxics.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Copies one direction of a connection through the link's toxics.
async fn pump(
    conn: Arc<Conn>,
    dir: Stream,
    mut src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
    end_tx: watch::Sender<End>,
    mut end: watch::Receiver<End>,
) {
    let mut toxics = conn.link.toxics.subscribe();
    let mut buf = vec![0u8; 32 * 1024];
    let counter = match dir {
        Stream::Upstream => &conn.link.counters.up,
        _ => &conn.link.counters.down,
    };
    let how = 'copy: loop {
        let n = tokio::select! {
            r = src.read(&mut buf) => match r {
                Ok(0) => {
                    let _ = dst.shutdown().await;
                    return;
                }
                Ok(n) => n,
                Err(_) => break 'copy End::Close,
            },
            e = ended(&mut end) => break 'copy e,
        };
        // Hold while a partition or timeout acts; then the delays of the others. (With
        // no toxic on the link, straight through.)
        let mut delay = Duration::ZERO;
        loop {
            let list = toxics.borrow_and_update().clone();
            if list.is_empty() {
                break;
            }
            let acting = conn.acting(&list, dir);
            // A lost connection that was open already dies at its next data.
            if let Some(t) = acting.iter().find(|t| t.effect == Effect::Loss) {
                conn.mark(t);
                break 'copy End::Reset;
            }
            if let Some((t, limit)) = acting.iter().find_map(|t| t.hold().map(|l| (*t, l))) {
                conn.mark(t);
                tokio::select! {
                    r = toxics.changed() => if r.is_err() { break 'copy End::Close },
                    _ = sleep_or_never(limit) => break 'copy End::Close,
                    e = ended(&mut end) => break 'copy e,
                }
                continue;
            }
            for t in acting {
                let d = t.delay(n, rand::random::<f64>());
                if !d.is_zero() {
                    conn.mark(t);
                    delay += d;
                }
            }
            break;
        }
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                e = ended(&mut end) => break 'copy e,
            }
        }
        if dst.write_all(&buf[..n]).await.is_err() {
            break 'copy End::Close;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
    };
    // Tell the other direction, and cut this one.
    let _ = end_tx.send(if how == End::Reset {
        End::Reset
    } else {
        End::Close
    });
    if how == End::Reset {
        #[allow(deprecated)]
        let _ = src.as_ref().set_linger(Some(Duration::ZERO));
    }
}

/// Waits until the connection is ended (by the other direction or a reset toxic).
async fn ended(end: &mut watch::Receiver<End>) -> End {
    end.wait_for(|e| *e != End::Open)
        .await
        .map_or(End::Close, |e| *e)
}
