//! The SMS send counters: `auth_sms_sends_total{gateway,outcome}`, one per gateway in use and outcome
//! (`sent`, `temporary`, `permanent`, `credentials`), appended to `/metrics` through auth-http's
//! `MetricsSource`.
//!
//! Every attempt is counted, so a message retried three times before it went counts three failures and
//! one `sent`. The gateways in use are rendered from the start, zeros included, so an alert on a rate
//! of `credentials` works before the first failure. Counting is one relaxed atomic increment.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::GatewayName;

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The gateway took the message.
    Sent,
    /// Retried later.
    Temporary,
    /// Refused for good; the message is dropped.
    Permanent,
    /// The account was refused; retried.
    Credentials,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 4] =
        [Outcome::Sent, Outcome::Temporary, Outcome::Permanent, Outcome::Credentials];

    /// The `outcome` label (and what `sms test` prints).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Temporary => "temporary",
            Outcome::Permanent => "permanent",
            Outcome::Credentials => "credentials",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Counters per (gateway, outcome).
#[derive(Debug)]
pub struct SmsMetrics {
    shown: Vec<GatewayName>,
    counts: Vec<AtomicU64>,
}

impl SmsMetrics {
    /// Counters for every gateway; `shown` are rendered even while zero.
    pub fn new(shown: &[GatewayName]) -> Self {
        let cells = GatewayName::ALL.len() * Outcome::ALL.len();
        Self { shown: shown.to_vec(), counts: (0..cells).map(|_| AtomicU64::new(0)).collect() }
    }

    fn cell(&self, gateway: GatewayName, outcome: Outcome) -> Option<&AtomicU64> {
        self.counts.get(gateway.index() * Outcome::ALL.len() + outcome.index())
    }

    /// Counts one attempt.
    pub fn count(&self, gateway: GatewayName, outcome: Outcome) {
        if let Some(c) = self.cell(gateway, outcome) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count so far.
    pub fn get(&self, gateway: GatewayName, outcome: Outcome) -> u64 {
        self.cell(gateway, outcome).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl auth_http::MetricsSource for SmsMetrics {
    fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP auth_sms_sends_total SMS delivery attempts, by gateway and outcome.\n",
        );
        out.push_str("# TYPE auth_sms_sends_total counter\n");
        for (name, gateway) in GatewayName::ALL {
            for outcome in Outcome::ALL {
                let n = self.get(gateway, outcome);
                if n > 0 || self.shown.contains(&gateway) {
                    let _ = writeln!(
                        out,
                        "auth_sms_sends_total{{gateway=\"{name}\",outcome=\"{}\"}} {n}",
                        outcome.as_str()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use auth_http::MetricsSource as _;

    use super::*;

    #[test]
    fn gateways_in_use_are_shown_from_zero_and_others_once_counted() {
        let m = SmsMetrics::new(&[GatewayName::Smsc]);
        m.count(GatewayName::Smsc, Outcome::Sent);
        m.count(GatewayName::Smsc, Outcome::Sent);
        m.count(GatewayName::File, Outcome::Temporary);
        let mut out = String::new();
        m.render(&mut out);
        assert_eq!(
            out,
            concat!(
                "# HELP auth_sms_sends_total SMS delivery attempts, by gateway and outcome.\n",
                "# TYPE auth_sms_sends_total counter\n",
                "auth_sms_sends_total{gateway=\"file\",outcome=\"temporary\"} 1\n",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"sent\"} 2\n",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"temporary\"} 0\n",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"permanent\"} 0\n",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"credentials\"} 0\n",
            )
        );
    }
}
