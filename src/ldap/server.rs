//! The LDAP listeners: accept connections (plain and LDAPS), frame them with ldap3_proto's
//! codec, run one [`Session`] per connection, and upgrade to TLS on StartTLS.
//!
//! Every connection is its own task: a malformed or oversized PDU, an idle phone or a panic
//! ends that one connection and nothing else. Connections are bounded by a semaphore; on
//! shutdown, listeners stop accepting and each connection closes between two requests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;

use crate::directory::Directory;
use crate::ldap::codec::Codec;
use crate::ldap::session::{encode_result, Action, Part, Policy, Session};
use crate::metrics::Metrics;

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub idle_timeout: Duration,
    pub max_pdu_size: usize,
}

/// Everything a connection needs, shared by all of them.
pub struct Endpoint {
    pub directory: Arc<Directory>,
    /// Replaced by a configuration reload; a connection keeps the policy it started with.
    pub policy: arc_swap::ArcSwap<Policy>,
    pub limits: Limits,
    /// Present when LDAPS or StartTLS is configured.
    pub tls: Option<TlsAcceptor>,
    pub metrics: Arc<Metrics>,
    /// Log one `access` line per operation.
    pub access_log: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Bound listeners; binding happens before serving so a taken port is a start-up error.
pub struct Listeners {
    pub plain: TcpListener,
    pub ldaps: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(plain: SocketAddr, ldaps: Option<SocketAddr>) -> std::io::Result<Self> {
        let plain = TcpListener::bind(plain).await?;
        let ldaps = match ldaps {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        Ok(Listeners { plain, ldaps })
    }
}

/// Open connections per client address, shared by the plain and the LDAPS listener.
#[derive(Default)]
struct PerClient {
    open: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    /// A slot for `ip`, or `None` when that client already holds `limit` connections.
    fn enter(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<ClientSlot> {
        let mut open = self.open.lock().ok()?;
        let count = open.entry(ip).or_default();
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.clients.open.lock() {
            if let Some(count) = open.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

/// Serves until `shutdown` turns true, then waits for open connections to finish.
pub async fn serve(listeners: Listeners, endpoint: Arc<Endpoint>, shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(endpoint.limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(
        listeners.plain,
        false,
        endpoint.clone(),
        permits.clone(),
        clients.clone(),
        shutdown.clone(),
    ));
    if let Some(ldaps) = listeners.ldaps {
        tasks.spawn(accept_loop(
            ldaps, true, endpoint, permits, clients, shutdown,
        ));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    listener: TcpListener,
    ldaps: bool,
    endpoint: Arc<Endpoint>,
    permits: Arc<Semaphore>,
    clients: Arc<PerClient>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "ldap: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = endpoint.limits.max_connections, "ldap: connection limit reached; refusing a connection");
            continue;
        };
        let Some(slot) = clients.enter(peer.ip(), endpoint.limits.max_connections_per_client)
        else {
            tracing::warn!(%peer, limit = endpoint.limits.max_connections_per_client, "ldap: this client holds too many connections; refusing another");
            continue;
        };
        let endpoint = endpoint.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            endpoint
                .metrics
                .ldap_open_connections
                .fetch_add(1, Ordering::Relaxed);
            connection(stream, peer, ldaps, &endpoint, shutdown).await;
            endpoint
                .metrics
                .ldap_open_connections
                .fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            drop(permit);
        });
    }
    // Drain: every connection sees the same shutdown signal and closes between requests.
    while connections.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    ldaps: bool,
    endpoint: &Endpoint,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let io: Box<dyn Io> = if ldaps {
        match handshake(Box::new(stream), endpoint).await {
            Some(tls) => tls,
            None => return,
        }
    } else {
        Box::new(stream)
    };
    let codec = || Codec::new(endpoint.limits.max_pdu_size);
    let mut framed = Framed::new(io, codec());
    let mut session = Session::new(
        endpoint.directory.clone(),
        endpoint.policy.load_full(),
        ldaps,
    );
    // One timer per connection, moved on only when it fires: re-arming a timeout for every
    // request costs more than answering a caller lookup.
    let idle_timeout = endpoint.limits.idle_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    let mut waiting_since = tokio::time::Instant::now();
    loop {
        let next = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            () = &mut idle => {
                let deadline = waiting_since + idle_timeout;
                if tokio::time::Instant::now() >= deadline {
                    tracing::debug!(%peer, "ldap: idle connection closed");
                    return;
                }
                idle.as_mut().reset(deadline);
                continue;
            }
            next = framed.next() => next,
        };
        let msg = match next {
            None => return,
            Some(Err(e)) => {
                tracing::warn!(%peer, error = %e, "ldap: malformed or oversized message; closing this connection");
                return;
            }
            Some(Ok(msg)) => msg,
        };
        let op = op_name(&msg.op);
        let request = endpoint.access_log.then(|| describe(&msg.op));
        let started = Instant::now();
        let reply = session.respond(msg);
        record(&endpoint.metrics, op, reply.last_msg(), started);
        if let Some(request) = request {
            let entries = reply.entry_count();
            tracing::info!(
                target: "access",
                client = %peer,
                bind_dn = session.bound_dn().unwrap_or(""),
                op,
                request,
                result = result_label(reply.last_msg()),
                entries,
                us = started.elapsed().as_micros() as u64,
                "ldap"
            );
        }
        for part in reply.parts {
            match part {
                // Plain results are written directly; the rest goes through the codec. Either
                // way the bytes land in the write buffer in order.
                Part::Msg(msg) if encode_result(&msg, framed.write_buffer_mut()) => {}
                Part::Msg(msg) => {
                    if framed.feed(msg).await.is_err() {
                        return;
                    }
                }
                Part::Entries(entries) => entries.encode(framed.write_buffer_mut()),
            }
        }
        if framed.flush().await.is_err() {
            return;
        }
        waiting_since = tokio::time::Instant::now();
        match reply.action {
            Action::Continue => {}
            Action::Close => return,
            Action::StartTls => {
                let parts = framed.into_parts();
                if !parts.read_buf.is_empty() {
                    tracing::warn!(%peer, "ldap: data sent before the StartTLS handshake; closing");
                    return;
                }
                let Some(tls) = handshake(parts.io, endpoint).await else {
                    return;
                };
                framed = Framed::new(tls, codec());
                session.tls_started();
            }
        }
    }
}

/// Performs a TLS handshake, bounded by the idle timeout.
async fn handshake(io: Box<dyn Io>, endpoint: &Endpoint) -> Option<Box<dyn Io>> {
    let acceptor = endpoint.tls.as_ref()?;
    match tokio::time::timeout(endpoint.limits.idle_timeout, acceptor.accept(io)).await {
        Ok(Ok(tls)) => Some(Box::new(tls)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "ldap: TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

fn op_name(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindRequest(_) => "bind",
        LdapOp::SearchRequest(_) => "search",
        LdapOp::UnbindRequest => "unbind",
        LdapOp::AbandonRequest(_) => "abandon",
        LdapOp::ExtendedRequest(_) => "extended",
        LdapOp::CompareRequest(_) => "compare",
        LdapOp::ModifyRequest(_)
        | LdapOp::AddRequest(_)
        | LdapOp::DelRequest(_)
        | LdapOp::ModifyDNRequest(_) => "write",
        _ => "other",
    }
}

/// What a request asked, for the access log — a bind's DN, never its password.
fn describe(op: &LdapOp) -> String {
    match op {
        LdapOp::BindRequest(b) => format!("dn=\"{}\"", b.dn),
        LdapOp::SearchRequest(s) => format!(
            "base=\"{}\" scope={:?} filter={} attrs={}",
            s.base,
            s.scope,
            crate::filter::to_text(&s.filter),
            s.attrs.join(",")
        ),
        LdapOp::CompareRequest(c) => format!("dn=\"{}\" attr={}", c.dn, c.atype),
        LdapOp::ExtendedRequest(e) => format!("oid={}", e.name),
        LdapOp::ModifyRequest(m) => format!("dn=\"{}\"", m.dn),
        LdapOp::AddRequest(a) => format!("dn=\"{}\"", a.dn),
        LdapOp::DelRequest(dn) => format!("dn=\"{dn}\""),
        LdapOp::ModifyDNRequest(m) => format!("dn=\"{}\"", m.dn),
        LdapOp::AbandonRequest(id) => format!("msgid={id}"),
        _ => String::new(),
    }
}

/// The result code of a reply as a label (`success`, `SizeLimitExceeded`, …).
fn result_label(last: Option<&LdapMsg>) -> String {
    let code = last.and_then(|m| match &m.op {
        LdapOp::BindResponse(r) => Some(&r.res.code),
        LdapOp::SearchResultDone(r)
        | LdapOp::ModifyResponse(r)
        | LdapOp::AddResponse(r)
        | LdapOp::DelResponse(r)
        | LdapOp::ModifyDNResponse(r)
        | LdapOp::CompareResult(r) => Some(&r.code),
        LdapOp::ExtendedResponse(r) => Some(&r.res.code),
        _ => None,
    });
    match code {
        Some(LdapResultCode::Success) => "success".to_owned(),
        Some(code) => format!("{code:?}"),
        None => "none".to_owned(),
    }
}

/// Counts an answered operation by kind and result code; times searches.
fn record(metrics: &Metrics, op: &'static str, last: Option<&LdapMsg>, started: Instant) {
    let result = result_label(last);
    metrics
        .ldap_requests
        .inc(&[("op", op), ("result", &result)]);
    if op == "search" {
        metrics.ldap_search_seconds.observe(started.elapsed());
    }
}
