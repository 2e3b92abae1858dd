//! The results: one row per scenario, the table printed at the end, and `summary.json`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::hash::HashResult;
use super::load::Recorder;

/// One scenario's numbers.
#[derive(Clone)]
pub(crate) struct Row {
    pub(crate) name: String,
    /// How the load was applied: `closed, 16 conns` or `open, 480/s`.
    pub(crate) load: String,
    /// Operations completed per second, whatever the answer.
    pub(crate) per_s: f64,
    /// Operations per second with the expected answer.
    pub(crate) ok_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) total: u64,
    pub(crate) ok: u64,
    /// Every outcome by label (`200`, `401`, `503`, `io`, …).
    pub(crate) statuses: BTreeMap<String, u64>,
    /// The outcomes that were not the expected answer.
    pub(crate) errors: BTreeMap<String, u64>,
    /// The server's peak RSS (VmHWM) when the scenario ended; it only grows.
    pub(crate) server_peak_rss_mib: Option<f64>,
    /// The server's CPU time per operation of the window, in µs (from `/proc/<pid>/stat`).
    pub(crate) cpu_us_per_req: Option<f64>,
    /// Scenario-specific figures.
    pub(crate) extra: Map<String, Value>,
}

impl Row {
    /// A row from a recorder; `ok_labels` are the outcome labels that count as expected.
    pub(crate) fn from_recorder(
        name: &str,
        load: String,
        rec: &Recorder,
        ok_labels: &[&str],
    ) -> Row {
        let statuses = rec.outcomes().clone();
        let errors = statuses
            .iter()
            .filter(|(k, _)| !ok_labels.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut extra = Map::new();
        let per_op = |d: std::time::Duration| {
            (rec.total() > 0).then(|| d.as_secs_f64() * 1e6 / rec.total() as f64)
        };
        let mut cpu_us_per_req = None;
        if let Some(cpu) = rec.cpu {
            cpu_us_per_req = per_op(cpu.server);
            let cores = |d: std::time::Duration| round(d.as_secs_f64() / rec.window_secs());
            // How busy each party was: a generator near 1.0 is the bottleneck of a closed loop.
            extra.insert("server_cpu_cores".into(), json!(cores(cpu.server)));
            extra.insert("generator_cpu_cores".into(), json!(cores(cpu.generator)));
            // The server's CPU beside its password hashes: what the transport, the rules and the
            // store cost (a login's hash is the same work whatever the rest does).
            if cpu.hashing > std::time::Duration::ZERO {
                extra.insert("server_hash_cpu_cores".into(), json!(cores(cpu.hashing)));
                if let Some(v) = per_op(cpu.hashing) {
                    extra.insert("server_hash_cpu_us_per_req".into(), json!(round(v)));
                }
                if let Some(v) = per_op(cpu.server.saturating_sub(cpu.hashing)) {
                    extra.insert("server_other_cpu_us_per_req".into(), json!(round(v)));
                }
            }
            if let Some(v) = per_op(cpu.generator) {
                extra.insert("generator_cpu_us_per_req".into(), json!(round(v)));
            }
            // Wake-ups of the runtime and blocking threads, and preemptions of the hashing ones.
            if rec.total() > 0 {
                let per = |n: u64| json!(round(n as f64 / rec.total() as f64));
                extra.insert("server_wakeups_per_req".into(), per(cpu.wakeups));
                if cpu.hashing > std::time::Duration::ZERO {
                    extra.insert("hash_preemptions_per_req".into(), per(cpu.preempted));
                }
            }
            if let Some(db) = cpu.db {
                extra.insert("db_cpu_cores".into(), json!(cores(db)));
                if let Some(v) = per_op(db) {
                    extra.insert("db_cpu_us_per_req".into(), json!(round(v)));
                }
            }
        }
        Row {
            name: name.to_owned(),
            load,
            per_s: rec.per_s(),
            ok_per_s: rec.ok_per_s(),
            p50_ms: rec.quantile_ms(0.50),
            p99_ms: rec.quantile_ms(0.99),
            total: rec.total(),
            ok: rec.ok(),
            statuses,
            errors,
            server_peak_rss_mib: None,
            cpu_us_per_req,
            extra,
        }
    }

    /// The row of the in-process hash scenario.
    pub(crate) fn from_hash(h: &HashResult) -> Row {
        let mut extra = Map::new();
        extra.insert("threads".into(), json!(h.threads));
        extra.insert("single_verify_ms".into(), json!(round(h.single_ms)));
        Row {
            name: "hash".to_owned(),
            load: format!("in-process, {} threads", h.threads),
            per_s: h.per_s,
            ok_per_s: h.per_s,
            p50_ms: h.p50_ms,
            p99_ms: h.p99_ms,
            total: h.ops,
            ok: h.ops,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            server_peak_rss_mib: None,
            cpu_us_per_req: None,
            extra,
        }
    }

    /// Answers with a 5xx status other than 503.
    pub(crate) fn unexpected_5xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(k, _)| k.parse::<u16>().is_ok_and(|s| s >= 500 && s != 503))
            .map(|(_, v)| v)
            .sum()
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("load".into(), json!(self.load));
        o.insert("requests_per_s".into(), json!(round(self.per_s)));
        o.insert("ok_per_s".into(), json!(round(self.ok_per_s)));
        o.insert("p50_ms".into(), json!(round(self.p50_ms)));
        o.insert("p99_ms".into(), json!(round(self.p99_ms)));
        o.insert("requests".into(), json!(self.total));
        o.insert("ok".into(), json!(self.ok));
        o.insert("statuses".into(), json!(self.statuses));
        o.insert("errors".into(), json!(self.errors));
        if let Some(rss) = self.server_peak_rss_mib {
            o.insert("server_peak_rss_mib".into(), json!(round(rss)));
        }
        if let Some(cpu) = self.cpu_us_per_req {
            o.insert("cpu_us_per_req".into(), json!(round(cpu)));
        }
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
        }
        Value::Object(o)
    }
}

/// Rounds to 3 decimals for the JSON (the precision is not real beyond that).
pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A goal of issue 6 and whether it was met.
pub(crate) struct Goal {
    pub(crate) key: String,
    pub(crate) value: f64,
    pub(crate) bound: f64,
    /// `true`: the value must be at least `bound`; `false`: at most.
    pub(crate) at_least: bool,
}

impl Goal {
    pub(crate) fn met(&self) -> bool {
        if self.at_least { self.value >= self.bound } else { self.value <= self.bound }
    }

    fn text(&self) -> String {
        format!("{} {}", if self.at_least { "≥" } else { "≤" }, self.bound)
    }
}

/// The table for the terminal.
pub(crate) fn print_table(rows: &[Row], goals: &[Goal]) {
    println!();
    println!(
        "{:<22} {:<26} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8}  statuses",
        "scenario", "load", "req/s", "ok/s", "p50 ms", "p99 ms", "µs/req", "RSS MiB"
    );
    for r in rows {
        let statuses: Vec<String> = r.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        println!(
            "{:<22} {:<26} {:>10.1} {:>10.1} {:>9.2} {:>9.2} {:>8} {:>8}  {}",
            r.name,
            r.load,
            r.per_s,
            r.ok_per_s,
            r.p50_ms,
            r.p99_ms,
            r.cpu_us_per_req.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}")),
            r.server_peak_rss_mib.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
            statuses.join(" ")
        );
    }
    println!();
    for g in goals {
        println!(
            "{:<28} {:>10.3}   goal {:<8} {}",
            g.key,
            g.value,
            g.text(),
            if g.met() { "met" } else { "NOT MET" }
        );
    }
    println!();
}

/// The goals as JSON: `{key: {value, goal, met}}`.
pub(crate) fn goals_json(goals: &[Goal]) -> Value {
    let mut o = Map::new();
    for g in goals {
        o.insert(
            g.key.clone(),
            json!({ "value": round(g.value), "goal": g.text(), "met": g.met() }),
        );
    }
    Value::Object(o)
}
