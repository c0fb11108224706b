//! The accept loop: HTTP/1.1 with upgrades (websockets), a deadline for request headers, one
//! for each write the client does not take, a cap on connections in all and per client IP, and
//! the peer address for the rate limits.
//!
//! `axum::serve` offers none of these settings, so connections are served by hyper directly,
//! the way `axum::serve` does it underneath.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use super::limits::ClientKey;
use crate::config::limits::LimitsSettings;
use crate::metrics::METRICS;

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish.
///
/// At most `max_connections` connections are served at once, websockets included (an
/// upgraded connection keeps its place until it closes). Beyond that, the accept loop stops
/// accepting: new connections wait in the kernel's listen backlog and are served as others
/// close, or time out on the client's side. Waiting rather than refusing keeps a burst of
/// screens reconnecting after a restart from seeing errors, while the header deadline makes
/// sure idle and slow connections give their place back.
///
/// One client IP may hold at most `max_connections_per_ip` of the places: a further connection
/// of its is closed as soon as it is accepted, so that one client cannot make every other wait.
/// A trusted proxy is exempt, since its connections are many clients'.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &LimitsSettings,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout());
    let connections = TaskTracker::new();
    loop {
        let place = tokio::select! {
            () = shutdown.cancelled() => break,
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
        };
        let ip_place = if is_trusted(limits, peer.ip()) {
            None
        } else {
            match per_ip.take(peer.ip(), limits.max_connections_per_ip) {
                Some(ip_place) => Some(ip_place),
                None => {
                    tracing::debug!(%peer, "connection closed: too many from this address");
                    continue;
                }
            }
        };
        let service =
            router
                .clone()
                .map_request(move |mut request: axum::http::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        METRICS.http_connections.inc();
        let io = TokioIo::new(Counted {
            stream,
            write_timeout: limits.write_timeout(),
            stalled: None,
            _place: place,
            _ip_place: ip_place,
        });
        let connection = http
            .serve_connection(io, TowerToHyperService::new(service))
            .with_upgrades();
        let closing = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => return log_closed(served, peer),
                () = closing.cancelled() => connection.as_mut().graceful_shutdown(),
            }
            log_closed(connection.await, peer);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

fn log_closed(served: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "connection closed with an error");
    }
}

/// A failed accept that concerns one connection is skipped; one that concerns the process
/// (out of file descriptors) would fail again at once, so the loop waits a little first.
async fn pause_after_accept_error(error: &io::Error) {
    let per_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if !per_connection {
        tracing::error!(%error, "cannot accept a connection");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn is_trusted(limits: &LimitsSettings, peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    limits.trusted_proxies.iter().any(|net| net.contains(&peer))
}

/// Connections open per client IP.
#[derive(Default)]
struct PerIp {
    // A std mutex: held for a map operation, never across an await.
    open: Mutex<HashMap<ClientKey, usize>>,
}

impl PerIp {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientKey, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(self: &Arc<Self>, peer: IpAddr, cap: usize) -> Option<IpPlace> {
        let key = ClientKey::of(peer);
        let mut open = self.lock();
        let held = open.entry(key).or_default();
        if *held >= cap {
            return None;
        }
        *held += 1;
        Some(IpPlace {
            per_ip: self.clone(),
            key,
        })
    }
}

/// One connection's place in its client IP's share.
struct IpPlace {
    per_ip: Arc<PerIp>,
    key: ClientKey,
}

impl Drop for IpPlace {
    fn drop(&mut self) {
        let mut open = self.per_ip.lock();
        if let Some(held) = open.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A connection that holds one of the places of `max_connections` (and of its IP's share)
/// until it is dropped, including after an upgrade, where hyper hands the stream to the
/// websocket.
///
/// hyper has no write timeout: a client that sends requests and never reads the answers would
/// hold its connection for ever once the socket's buffers are full. A write that waits longer
/// than `write_timeout` for the client fails, which closes the connection; the clock restarts
/// whenever the client takes bytes, so a slow reader keeps its connection.
struct Counted {
    stream: TcpStream,
    write_timeout: Duration,
    /// Armed while a write waits for the client.
    stalled: Option<Pin<Box<Sleep>>>,
    _place: OwnedSemaphorePermit,
    _ip_place: Option<IpPlace>,
}

impl Counted {
    /// The outcome of a write: ready ones disarm the deadline, waiting ones arm it.
    fn deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if written.is_ready() {
            self.stalled = None;
            return written;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not take the answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        METRICS.http_connections.dec();
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.deadline(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.deadline(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
