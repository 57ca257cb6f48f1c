//! Process-wide counters for `/metrics` (Prometheus text format). Counters are per node; sums
//! across nodes are Prometheus's job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

#[derive(Debug)]
pub struct Metrics {
    started: SystemTime,
    http_by_class: [AtomicU64; 5],
    pub logins_success: AtomicU64,
    pub logins_failure: AtomicU64,
    pub logins_throttled: AtomicU64,
    pub logouts: AtomicU64,
    /// Tokens issued at the token endpoint, by client (at most [`MAX_CLIENT_LABELS`] labels).
    tokens_by_client: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// Distinct client labels kept; later clients are counted under `other`.
pub const MAX_CLIENT_LABELS: usize = 500;

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: SystemTime::now(),
            http_by_class: Default::default(),
            logins_success: AtomicU64::new(0),
            logins_failure: AtomicU64::new(0),
            logins_throttled: AtomicU64::new(0),
            logouts: AtomicU64::new(0),
            tokens_by_client: Default::default(),
        }
    }
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Resident set size of this process in bytes (Linux), for the memory target.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

impl Metrics {
    /// Counts a token issued to `client_id`.
    pub fn token_issued(&self, client_id: &str) {
        if let Ok(mut m) = self.tokens_by_client.lock() {
            let key = if m.contains_key(client_id) || m.len() < MAX_CLIENT_LABELS {
                client_id
            } else {
                "other"
            };
            match m.get_mut(key) {
                Some(n) => *n += 1,
                None => {
                    m.insert(key.to_owned(), 1);
                }
            }
        }
    }

    pub fn record_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        inc(&self.http_by_class[class]);
    }

    /// The exposition text. `gauges` are values read at scrape time (sessions, pool).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP kuntalaistili_build_info Version of the running server."
        );
        let _ = writeln!(out, "# TYPE kuntalaistili_build_info gauge");
        let _ = writeln!(
            out,
            "kuntalaistili_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP kuntalaistili_http_responses_total HTTP responses by status class."
        );
        let _ = writeln!(out, "# TYPE kuntalaistili_http_responses_total counter");
        for (i, c) in self.http_by_class.iter().enumerate() {
            let _ = writeln!(
                out,
                "kuntalaistili_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                get(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP kuntalaistili_logins_total Password login attempts by result."
        );
        let _ = writeln!(out, "# TYPE kuntalaistili_logins_total counter");
        for (result, c) in [
            ("success", &self.logins_success),
            ("failure", &self.logins_failure),
            ("throttled", &self.logins_throttled),
        ] {
            let _ = writeln!(
                out,
                "kuntalaistili_logins_total{{result=\"{result}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# HELP kuntalaistili_logouts_total Logouts.");
        let _ = writeln!(out, "# TYPE kuntalaistili_logouts_total counter");
        let _ = writeln!(out, "kuntalaistili_logouts_total {}", get(&self.logouts));
        let _ = writeln!(
            out,
            "# HELP kuntalaistili_tokens_issued_total Tokens issued at the token endpoint, by client."
        );
        let _ = writeln!(out, "# TYPE kuntalaistili_tokens_issued_total counter");
        if let Ok(m) = self.tokens_by_client.lock() {
            for (client, n) in m.iter() {
                // Client ids are UUIDs or our fixed ids; escape anyway.
                let label = client.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(
                    out,
                    "kuntalaistili_tokens_issued_total{{client=\"{label}\"}} {n}"
                );
            }
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(rss) = resident_bytes() {
            let _ = writeln!(
                out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes."
            );
            let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        let start = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let _ = writeln!(
            out,
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch."
        );
        let _ = writeln!(out, "# TYPE process_start_time_seconds gauge");
        let _ = writeln!(out, "process_start_time_seconds {start}");
        out
    }
}
