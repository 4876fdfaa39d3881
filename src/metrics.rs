//! Process-wide counters for `/metrics`: what the endpoints answered and what the syncs did.
//!
//! Deliberately small: labelled counters and one latency histogram, rendered in Prometheus's
//! text format by the HTTP endpoint. Recording costs one uncontended lock, far below the cost
//! of the request it counts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A counter with label values, e.g. `{op="search",result="success"}`.
#[derive(Default)]
pub struct Counter {
    values: Mutex<BTreeMap<Vec<(&'static str, String)>, u64>>,
}

impl Counter {
    pub fn inc(&self, labels: &[(&'static str, &str)]) {
        let key = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        if let Ok(mut values) = self.values.lock() {
            *values.entry(key).or_insert(0) += 1;
        }
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        if let Ok(values) = self.values.lock() {
            for (labels, value) in values.iter() {
                let _ = writeln!(out, "{name}{} {value}", label_text(labels));
            }
        }
    }
}

/// Upper bounds (seconds) of the latency buckets: from a cached lookup to a slow sync.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
    30.0,
];

/// A latency histogram with fixed buckets.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the process exports.
#[derive(Default)]
pub struct Metrics {
    pub ldap_requests: Counter,
    pub ldap_search_seconds: Histogram,
    pub ldap_open_connections: AtomicU64,
    pub http_requests: Counter,
    pub syncs: Counter,
    pub sync_seconds: Histogram,
}

/// What monitoring watches of one configured connector.
pub struct ConnectorGauges<'a> {
    pub name: &'a str,
    /// Its entries in the served book.
    pub entries: usize,
    pub health: crate::runs::Health,
}

impl Metrics {
    /// The Prometheus text exposition; `entries` and `generation` come from the snapshot,
    /// `connectors` from the configuration, the snapshot and the store's run history.
    pub fn render(
        &self,
        entries: usize,
        generation: u64,
        connectors: &[ConnectorGauges],
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP phonebook_build_info The running version (value 1).\n# TYPE phonebook_build_info gauge\nphonebook_build_info{} 1",
            label_text(&[("version", env!("CARGO_PKG_VERSION").to_owned())])
        );
        let per_connector =
            |out: &mut String,
             name: &str,
             help: &str,
             value: &dyn Fn(&ConnectorGauges) -> Option<u64>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for c in connectors {
                    if let Some(v) = value(c) {
                        let labels = label_text(&[("connector", c.name.to_owned())]);
                        let _ = writeln!(out, "{name}{labels} {v}");
                    }
                }
            };
        per_connector(
            &mut out,
            "phonebook_connector_entries",
            "Entries of each connector in the served phone book.",
            &|c| Some(c.entries as u64),
        );
        per_connector(
            &mut out,
            "phonebook_last_success_timestamp_seconds",
            "When each connector's last successful sync (applied or unchanged) finished, Unix time; absent before the first.",
            &|c| c.health.last_success,
        );
        per_connector(
            &mut out,
            "phonebook_consecutive_failures",
            "Syncs of each connector that failed or were held back since its last success.",
            &|c| Some(c.health.consecutive_failures),
        );
        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "phonebook_entries",
            "Entries in the served phone book.",
            entries as u64,
        );
        gauge(
            &mut out,
            "phonebook_generation",
            "Version of the served phone book.",
            generation,
        );
        gauge(
            &mut out,
            "phonebook_ldap_open_connections",
            "LDAP connections currently open.",
            self.ldap_open_connections.load(Ordering::Relaxed),
        );
        self.ldap_requests.render(
            "phonebook_ldap_requests_total",
            "LDAP operations by kind and result code.",
            &mut out,
        );
        self.ldap_search_seconds.render(
            "phonebook_ldap_search_seconds",
            "Time to answer an LDAP search.",
            &mut out,
        );
        self.http_requests.render(
            "phonebook_http_requests_total",
            "HTTP requests by route and status.",
            &mut out,
        );
        self.syncs.render(
            "phonebook_syncs_total",
            "Syncs by connector and outcome.",
            &mut out,
        );
        self.sync_seconds
            .render("phonebook_sync_seconds", "Duration of syncs.", &mut out);
        out
    }
}

fn label_text(labels: &[(&'static str, String)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_cumulative_buckets() {
        let m = Metrics::default();
        m.ldap_requests
            .inc(&[("op", "search"), ("result", "success")]);
        m.ldap_requests
            .inc(&[("op", "search"), ("result", "success")]);
        m.ldap_requests
            .inc(&[("op", "bind"), ("result", "invalidCredentials")]);
        m.ldap_search_seconds.observe(Duration::from_micros(80));
        m.ldap_search_seconds.observe(Duration::from_millis(3));
        let connectors = [
            ConnectorGauges {
                name: "corp",
                entries: 40,
                health: crate::runs::Health {
                    last_success: Some(1_700_000_000),
                    consecutive_failures: 2,
                },
            },
            ConnectorGauges {
                name: "new",
                entries: 2,
                health: crate::runs::Health::default(),
            },
        ];
        let text = m.render(42, 7, &connectors);
        assert!(text.contains("phonebook_entries 42\n"), "{text}");
        assert!(text.contains("phonebook_connector_entries{connector=\"corp\"} 40\n"));
        assert!(text
            .contains("phonebook_last_success_timestamp_seconds{connector=\"corp\"} 1700000000\n"));
        assert!(
            !text.contains("phonebook_last_success_timestamp_seconds{connector=\"new\"}"),
            "never succeeded: no sample"
        );
        assert!(text.contains("phonebook_consecutive_failures{connector=\"corp\"} 2\n"));
        assert!(text.contains(&format!(
            "phonebook_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            text.contains("phonebook_ldap_requests_total{op=\"search\",result=\"success\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("phonebook_ldap_search_seconds_bucket{le=\"0.0001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("phonebook_ldap_search_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("phonebook_ldap_search_seconds_count 2\n"),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let c = Counter::default();
        c.inc(&[("connector", "a\"b")]);
        let mut out = String::new();
        c.render("x", "y", &mut out);
        assert!(out.contains("x{connector=\"a\\\"b\"} 1"), "{out}");
    }
}
