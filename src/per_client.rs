//! Open connections per client address, for the LDAP and the HTTP listeners: one client (or
//! one host of an attacker's) may hold only its share, so it cannot starve the rest.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Open connections per client address (LDAP shares one between its plain and LDAPS
/// listeners).
#[derive(Default)]
pub struct PerClient {
    open: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; uncounted when dropped.
pub struct ClientSlot {
    clients: Arc<PerClient>,
    ip: IpAddr,
}

impl PerClient {
    /// A slot for `ip`, or `None` when that client already holds `limit` connections.
    pub fn enter(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<ClientSlot> {
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

/// How often a refusal of the same kind is logged, at most.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// Counts events and lets one log line through per [`WARN_EVERY`] (so a flood of refused connections cannot flood the log), with the count since.
#[derive(Default)]
pub struct Throttled {
    last: Option<Instant>,
    count: u64,
}

impl Throttled {
    pub fn warn(&mut self, log: impl FnOnce(u64)) {
        self.count += 1;
        if self.last.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            log(self.count);
            self.count = 0;
            self.last = Some(Instant::now());
        }
    }
}
