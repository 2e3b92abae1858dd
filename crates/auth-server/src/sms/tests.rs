//! Tests of the gateway layer: routing to the right gateway, what the outbox is told for each class,
//! the counters, and the scrubbing of quoted provider text.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::SecretString;
use auth_core::ports::{SmsError, SmsGateway, SmsMessage};

use super::*;

/// A gateway that answers from a script and records who it was asked to send to.
#[derive(Debug)]
struct Scripted {
    answers: Mutex<Vec<Result<Receipt, SendError>>>,
    sent_to: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(answers: Vec<Result<Receipt, SendError>>) -> Arc<Self> {
        Arc::new(Self { answers: Mutex::new(answers), sent_to: Mutex::new(Vec::new()) })
    }
}

#[async_trait]
impl Provider for Scripted {
    async fn send(&self, msg: &SmsMessage) -> Result<Receipt, SendError> {
        self.sent_to.lock().unwrap().push(msg.to.clone());
        let mut answers = self.answers.lock().unwrap();
        if answers.is_empty() { Ok(Receipt::new("ok")) } else { answers.remove(0) }
    }
}

fn msg(to: &str) -> SmsMessage {
    SmsMessage { id: 9, to: to.to_owned(), text: SecretString::new("Code: 123456") }
}

#[tokio::test]
async fn messages_follow_their_route_and_each_class_tells_the_outbox_what_to_do() {
    let usa = Scripted::new(vec![
        Err(SendError::Temporary("busy".into())),
        Err(SendError::Credentials("wrong key".into())),
        Err(SendError::Permanent("invalid number".into())),
    ]);
    let rest = Scripted::new(Vec::new());
    let routes = Routes::new(
        GatewayName::Smsc,
        &[Route { prefix: "1".into(), gateway: GatewayName::ClickatellUsa }],
    );
    let mut providers: BTreeMap<GatewayName, Arc<dyn Provider>> = BTreeMap::new();
    providers.insert(GatewayName::ClickatellUsa, usa.clone());
    providers.insert(GatewayName::Smsc, rest.clone());
    let gateways = Gateways::from_parts(routes, providers);

    let outcomes: Vec<String> = [
        gateways.deliver(&msg("12025550123")).await,
        gateways.deliver(&msg("12025550123")).await,
        gateways.deliver(&msg("12025550123")).await,
        gateways.deliver(&msg("79123456789")).await,
    ]
    .into_iter()
    .map(|r| match r {
        Ok(()) => "sent".to_owned(),
        Err(SmsError::Unavailable(m)) => format!("retry: {m}"),
        Err(SmsError::Rejected(m)) => format!("drop: {m}"),
    })
    .collect();
    assert_eq!(
        outcomes,
        [
            "retry: clickatell_usa: temporary failure: busy",
            // Bad credentials are retried like an outage: the message is not at fault.
            "retry: clickatell_usa: credentials or account refused: wrong key",
            "drop: clickatell_usa: invalid number",
            "sent",
        ]
    );
    assert_eq!(usa.sent_to.lock().unwrap().len(), 3);
    assert_eq!(*rest.sent_to.lock().unwrap(), ["79123456789"]);
    let m = gateways.metrics();
    let count = |g, o| m.get(g, o);
    assert_eq!(count(GatewayName::ClickatellUsa, Outcome::Temporary), 1);
    assert_eq!(count(GatewayName::ClickatellUsa, Outcome::Credentials), 1);
    assert_eq!(count(GatewayName::ClickatellUsa, Outcome::Permanent), 1);
    assert_eq!(count(GatewayName::ClickatellUsa, Outcome::Sent), 0);
    assert_eq!(count(GatewayName::Smsc, Outcome::Sent), 1);
}

#[test]
fn scrub_cuts_blanks_credentials_and_control_characters() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("wrong key abcd1234 given", &["abcd1234"], "wrong key <redacted> given"),
        ("line\nbreak\ttab", &[], "line break tab"),
        // A key too short to be a real key is left alone, so a word like "id" is not blanked.
        ("id 42", &["id"], "id 42"),
    ];
    for (text, secrets, want) in cases {
        assert_eq!(scrub(text, secrets), *want, "{text}");
    }
    // A credential cut off by the length cap is still blanked.
    let secret = "K".repeat(40);
    let long = format!("{}{secret}", "x".repeat(180));
    let out = scrub(&long, &[&secret]);
    assert!(!out.contains("KKKK"), "{out}");
    assert!(out.chars().count() <= 200 + "<redacted>".len(), "{out}");
}

proptest::proptest! {
    /// Wherever a credential sits in a provider's words, and however the length cap cuts them, the
    /// credential does not come out.
    #[test]
    fn scrub_never_shows_a_credential(
        before in "(?s).{0,240}",
        secret in "[A-Za-z0-9+/=_-]{8,48}",
        after in "(?s).{0,40}",
    ) {
        let out = scrub(&format!("{before}{secret}{after}"), &[&secret]);
        proptest::prop_assert!(!out.contains(&secret), "{out}");
        proptest::prop_assert!(out.chars().all(|c| !c.is_control()));
    }
}

#[test]
fn gateway_names_round_trip() {
    for (name, gateway) in GatewayName::ALL {
        assert_eq!(GatewayName::parse(name), Some(gateway));
        assert_eq!(gateway.as_str(), name);
    }
    assert_eq!(GatewayName::parse("Twilio"), None);
}
