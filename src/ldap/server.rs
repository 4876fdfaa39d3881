//! The LDAP listeners: accept connections (plain and LDAPS), frame them with
//! [`Codec`](crate::ldap::wire::codec::Codec), run one [`Session`] per connection, and upgrade
//! to TLS on StartTLS.
//!
//! Every connection is its own task: a malformed or oversized PDU, an idle phone or a panic
//! ends that one connection and nothing else. Connections are bounded by a semaphore; on
//! shutdown, listeners stop accepting and each connection closes between two requests.
//!
//! What one connection may hold is bounded too: a reply is queued at most
//! `max_queued_bytes` at a time (large searches are encoded in slices and flushed in
//! between), and a client that does not read what is queued within `write_timeout` loses
//! its connection. Binds are throttled per client address after failed ones ([`BindThrottle`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, SinkExt, StreamExt};
use ldap3_proto::proto::{LdapBindCred, LdapMsg, LdapOp, LdapResultCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Framed;

use crate::config::LdapLimits;
use crate::directory::Directory;
use crate::ldap::response::{Action, Part, Response};
use crate::ldap::session::{Policy, Session};
use crate::ldap::wire::codec::{encode_into, Codec};
use crate::ldap::wire::encode::encode_result;
use crate::metrics::Metrics;
use crate::per_client::PerClient;

/// Addresses the bind throttle remembers at most; beyond that the oldest is forgotten, so a
/// client cycling through many addresses (IPv6) cannot grow the table without bound.
const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// How long a bind from a throttled address waits before it is refused: it slows a password
/// guesser down without holding a worker (the wait is a timer in the connection's task).
const REFUSED_BIND_DELAY: Duration = Duration::from_secs(1);

/// A write buffer that grew beyond this for a large reply is given back afterwards, so an
/// idle connection does not keep the memory of its largest answer.
const KEPT_WRITE_BUFFER: usize = 64 * 1024;

/// Failed binds per client address.
///
/// Only binds with a password count and are refused (an anonymous bind guesses nothing). A
/// failure opens a window of `window`; the `max_failed`-th failure within it blocks the address
/// for a whole `window` from then, during which its binds are delayed and refused without
/// being checked — so at most `max_failed` passwords are tried per window. A successful bind
/// does not reset the count: the phones' shared account is no secret on an office LAN, and a
/// guesser could otherwise interleave it between guesses; failures simply expire with their
/// window. A refused bind does not extend the block, so a phone behind the same address gets
/// in again after one window however long the guesser keeps trying.
pub struct BindThrottle {
    max_failed: u32,
    window: Duration,
    clients: std::sync::Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// When the counting window opened (the first failure of the window).
    since: Instant,
    count: u32,
    /// Binds are refused until then.
    blocked_until: Option<Instant>,
}

impl Failures {
    /// Still worth remembering at `now`: blocked, or failures within their window.
    fn live(&self, now: Instant, window: Duration) -> bool {
        match self.blocked_until {
            Some(until) => now < until,
            None => now.duration_since(self.since) < window,
        }
    }
}

impl BindThrottle {
    pub fn new(max_failed: u32, window: Duration) -> Self {
        BindThrottle {
            max_failed,
            window,
            clients: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Binds from `ip` are refused at `now`.
    fn blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let mut clients = self.lock();
        match clients.get(&ip).and_then(|f| f.blocked_until) {
            Some(until) if now < until => true,
            Some(_) => {
                // The block is over: the address starts afresh.
                clients.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Counts a failed bind from `ip`; `true` when this failure blocks the address (the one
    /// moment per window that is logged).
    fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let mut clients = self.lock();
        if !clients.contains_key(&ip) && clients.len() >= MAX_TRACKED_ADDRESSES {
            let window = self.window;
            clients.retain(|_, f| f.live(now, window));
            if clients.len() >= MAX_TRACKED_ADDRESSES {
                let oldest = clients
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    clients.remove(&oldest);
                }
            }
        }
        let entry = clients.entry(ip).or_insert(Failures {
            since: now,
            count: 0,
            blocked_until: None,
        });
        if !entry.live(now, self.window) {
            *entry = Failures {
                since: now,
                count: 0,
                blocked_until: None,
            };
        }
        entry.count = entry.count.saturating_add(1);
        if entry.count >= self.max_failed && entry.blocked_until.is_none() {
            entry.blocked_until = Some(now + self.window);
            return true;
        }
        false
    }

    /// The table, also after a panic elsewhere poisoned the lock: each entry is valid on its
    /// own, so the counts carry on rather than the throttle failing open or refusing all.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// Counts a connection in the open-connections gauge for as long as it lives — also when its
/// task panics, since unwinding drops it.
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: Arc<Metrics>) -> Self {
        metrics
            .ldap_open_connections
            .fetch_add(1, Ordering::Relaxed);
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.ldap_open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything a connection needs, shared by all of them.
pub struct Endpoint {
    pub directory: Arc<Directory>,
    /// Replaced by a configuration reload; a connection keeps the policy it started with.
    pub policy: arc_swap::ArcSwap<Policy>,
    pub limits: LdapLimits,
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

/// Serves until `shutdown` turns true, then waits for open connections to finish.
pub async fn serve(listeners: Listeners, endpoint: Arc<Endpoint>, shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(endpoint.limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let throttle = Arc::new(BindThrottle::new(
        endpoint.limits.max_failed_binds,
        endpoint.limits.failed_bind_window,
    ));
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(
        listeners.plain,
        false,
        endpoint.clone(),
        permits.clone(),
        clients.clone(),
        throttle.clone(),
        shutdown.clone(),
    ));
    if let Some(ldaps) = listeners.ldaps {
        tasks.spawn(accept_loop(
            ldaps, true, endpoint, permits, clients, throttle, shutdown,
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
    throttle: Arc<BindThrottle>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    // Refusals are logged once a minute with their count, not once each.
    let mut refused = crate::per_client::Throttled::default();
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
            let limit = endpoint.limits.max_connections;
            refused.warn(|n| tracing::warn!(%peer, limit, refused = n, "ldap: connection limit reached; refusing connections"));
            continue;
        };
        let Some(slot) = clients.enter(peer.ip(), endpoint.limits.max_connections_per_client)
        else {
            let limit = endpoint.limits.max_connections_per_client;
            refused.warn(|n| tracing::warn!(%peer, limit, refused = n, "ldap: a client holds too many connections; refusing more from it"));
            continue;
        };
        let endpoint = endpoint.clone();
        let throttle = throttle.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            // Everything counted for this connection is released when the task ends, however.
            let _open = OpenConnection::new(endpoint.metrics.clone());
            let _slot = slot;
            let _permit = permit;
            connection(stream, peer, ldaps, &endpoint, &throttle, shutdown).await;
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
    throttle: &BindThrottle,
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
        let password_bind = matches!(
            &msg.op,
            LdapOp::BindRequest(b) if matches!(&b.cred, LdapBindCred::Simple(p) if !p.is_empty())
        );
        let reply = if password_bind && throttle.blocked(peer.ip(), started) {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(REFUSED_BIND_DELAY) => {}
            }
            session.refuse_bind(
                msg.msgid,
                "too many failed binds from this address; binds are refused for a while \
                 (ldap.max_failed_binds, ldap.failed_bind_window)",
            )
        } else {
            let critical = framed.codec().critical();
            let reply = session.respond_with(msg, critical);
            if password_bind && bind_failed(&reply) && throttle.failed(peer.ip(), Instant::now()) {
                tracing::warn!(
                    client = %peer.ip(),
                    failed = endpoint.limits.max_failed_binds,
                    window = ?endpoint.limits.failed_bind_window,
                    "ldap: too many failed binds from this address; refusing its binds for one window"
                );
            }
            reply
        };
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
                // Plain results are written directly; the rest through ldap3_proto's encoder.
                // Either way the bytes land in the write buffer in order.
                Part::Msg(msg) if encode_result(&msg, framed.write_buffer_mut()) => {}
                Part::Msg(msg) => {
                    if encode_into(msg, framed.write_buffer_mut()).is_err() {
                        return;
                    }
                }
                Part::Entries(entries) => {
                    let limit = endpoint.limits.max_queued_bytes;
                    let mut next = 0;
                    loop {
                        next = entries.encode_from(next, limit, framed.write_buffer_mut());
                        if next >= entries.len() {
                            break;
                        }
                        if !write_out(&mut framed, endpoint, peer, &mut shutdown).await {
                            return;
                        }
                    }
                }
            }
        }
        if !write_out(&mut framed, endpoint, peer, &mut shutdown).await {
            return;
        }
        if framed.write_buffer().capacity() > KEPT_WRITE_BUFFER {
            *framed.write_buffer_mut() = tokio_util::bytes::BytesMut::new();
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

/// Writes out everything queued; `false` when the connection must close. Most replies fit in
/// the socket's buffer and go out at the first try without arming a timer (a timer per
/// request would cost more than a caller lookup); the rest must be read by the client within
/// the write timeout.
async fn write_out<T: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<T, Codec>,
    endpoint: &Endpoint,
    peer: SocketAddr,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if let Some(written) = framed.flush().now_or_never() {
        return written.is_ok();
    }
    let timeout = endpoint.limits.write_timeout;
    let written = tokio::select! {
        _ = shutdown.wait_for(|stop| *stop) => return false,
        written = tokio::time::timeout(timeout, framed.flush()) => written,
    };
    match written {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            tracing::warn!(
                %peer,
                ?timeout,
                queued = framed.write_buffer().len(),
                "ldap: the client does not read its replies; closing this connection"
            );
            false
        }
    }
}

/// A bind answered with invalidCredentials (a wrong DN or password).
fn bind_failed(reply: &Response) -> bool {
    matches!(
        reply.last_msg().map(|m| &m.op),
        Some(LdapOp::BindResponse(r)) if r.res.code == LdapResultCode::InvalidCredentials
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn failed_binds_block_an_address_for_one_window() {
        let window = Duration::from_secs(60);
        let throttle = BindThrottle::new(3, window);
        let t0 = Instant::now();
        assert!(!throttle.failed(ip(1), t0));
        assert!(!throttle.failed(ip(1), t0));
        assert!(!throttle.blocked(ip(1), t0));
        // The third failure blocks (and is the one reported); other addresses are untouched.
        assert!(throttle.failed(ip(1), t0 + Duration::from_secs(10)));
        assert!(throttle.blocked(ip(1), t0 + Duration::from_secs(11)));
        assert!(!throttle.blocked(ip(2), t0 + Duration::from_secs(11)));
        // Reported once per window, however many failures follow.
        assert!(!throttle.failed(ip(1), t0 + Duration::from_secs(12)));
        // A whole window from the blocking failure on, the address starts afresh.
        assert!(throttle.blocked(ip(1), t0 + Duration::from_secs(69)));
        assert!(!throttle.blocked(ip(1), t0 + Duration::from_secs(70)));
        assert!(!throttle.failed(ip(1), t0 + Duration::from_secs(71)));
        // Failures spread wider than a window never block.
        let throttle = BindThrottle::new(2, window);
        assert!(!throttle.failed(ip(3), t0));
        assert!(!throttle.failed(ip(3), t0 + window));
        assert!(!throttle.blocked(ip(3), t0 + window));
    }

    #[test]
    fn the_table_of_addresses_is_bounded() {
        let throttle = BindThrottle::new(5, Duration::from_secs(60));
        let t0 = Instant::now();
        let blocked = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..5 {
            throttle.failed(blocked, t0);
        }
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 100) {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(u128::from(i) + 1));
            throttle.failed(addr, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(throttle.tracked(), MAX_TRACKED_ADDRESSES);
        // The oldest went first: that was the blocked address.
        assert!(!throttle.blocked(blocked, t0 + Duration::from_secs(30)));
        // Expired entries are dropped before anything live is evicted.
        let later = t0 + Duration::from_secs(3600);
        throttle.failed(ip(9), later);
        assert_eq!(throttle.tracked(), 1);
    }

    #[tokio::test]
    async fn the_open_connections_gauge_survives_a_panicking_connection() {
        let metrics = Arc::new(Metrics::default());
        let task = tokio::spawn({
            let metrics = metrics.clone();
            async move {
                let _open = OpenConnection::new(metrics.clone());
                assert_eq!(metrics.ldap_open_connections.load(Ordering::Relaxed), 1);
                panic!("a bug in a connection task");
            }
        });
        assert!(task.await.is_err());
        assert_eq!(metrics.ldap_open_connections.load(Ordering::Relaxed), 0);
    }
}
