//! The SMS send counters: `auth_sms_sends_total{gateway,outcome}`, one per gateway in use and outcome
//! (`sent`, `temporary`, `permanent`, `credentials`), a prometheus-client family in the server's
//! registry.
//!
//! Every attempt is counted, so a message retried three times before it went counts three failures and
//! one `sent`. The gateways in use are shown from the start, zeros included, so an alert on a rate
//! of `credentials` works before the first failure. Counting is a map lookup and one atomic increment,
//! once per delivery attempt (never on a request's path).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

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
}

/// The labels of a send: gateway, then outcome.
type Labels = [(&'static str, &'static str); 2];

fn labels(gateway: GatewayName, outcome: Outcome) -> Labels {
    [("gateway", gateway.as_str()), ("outcome", outcome.as_str())]
}

/// Counters per (gateway, outcome).
#[derive(Debug, Default)]
pub struct SmsMetrics {
    sends: Family<Labels, Counter>,
}

impl SmsMetrics {
    /// Counters for every gateway; `shown` are shown even while zero.
    pub fn new(shown: &[GatewayName]) -> Self {
        let m = Self::default();
        for gateway in shown {
            for outcome in Outcome::ALL {
                // Made now, so the series shows from the start.
                let _ = m.sends.get_or_create_owned(&labels(*gateway, outcome));
            }
        }
        m
    }

    /// Adds the family to the server's registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "auth_sms_sends",
            "SMS delivery attempts, by gateway and outcome",
            self.sends.clone(),
        );
    }

    /// Counts one attempt.
    pub fn count(&self, gateway: GatewayName, outcome: Outcome) {
        self.sends.get_or_create(&labels(gateway, outcome)).inc();
    }

    /// The count so far.
    pub fn get(&self, gateway: GatewayName, outcome: Outcome) -> u64 {
        self.sends.get(&labels(gateway, outcome)).map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_in_use_are_shown_from_zero_and_others_once_counted() {
        let m = SmsMetrics::new(&[GatewayName::Smsc]);
        m.count(GatewayName::Smsc, Outcome::Sent);
        m.count(GatewayName::Smsc, Outcome::Sent);
        m.count(GatewayName::File, Outcome::Temporary);
        let mut registry = Registry::default();
        m.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        let mut samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        samples.sort_unstable();
        assert!(
            out.starts_with(concat!(
                "# HELP auth_sms_sends_total SMS delivery attempts, by gateway and outcome.\n",
                "# TYPE auth_sms_sends_total counter\n",
            )),
            "{out}"
        );
        assert_eq!(
            samples,
            [
                "auth_sms_sends_total{gateway=\"file\",outcome=\"temporary\"} 1",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"credentials\"} 0",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"permanent\"} 0",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"sent\"} 2",
                "auth_sms_sends_total{gateway=\"smsc\",outcome=\"temporary\"} 0",
            ]
        );
        assert_eq!(m.get(GatewayName::Smsc, Outcome::Sent), 2);
        assert_eq!(m.get(GatewayName::Twilio, Outcome::Sent), 0);
    }
}
