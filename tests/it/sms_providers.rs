//! Real SMS delivery (issue 16, spec §12): the server sends SMS-login codes through each provider's
//! documented HTTP API (SMSC, Twilio, Clickatell, SMS.ru) and the signed webhook, over HTTPS to fakes
//! on loopback that check every request against the contract (`auth_tests::sms`).
//!
//! For each gateway one server goes through the failure classes in turn, one message at a time: a 5xx
//! and then success (the code arrives once and logs in), a 429 and then an answer that comes too late
//! (a timeout) and then success, a documented "try later" code, a documented permanent refusal (the
//! message is dropped, audited and counted), and credentials the provider stops accepting (retried,
//! logged as an error on every attempt, delivered once they are right again). The portal speaks
//! Russian, so every code arrives as `Код: …`, which proves the Cyrillic text intact. At the end the
//! counters on `/metrics` match, the fake saw no contract violation, and no credential or code reached
//! the log. `sms test` and routing by prefix are checked here too, and two nodes on PostgreSQL with a
//! slow webhook receiver deliver every message exactly once.

use std::time::{Duration, Instant};

use auth_tests::sms::{Accepted, FakeProvider, Kind, Step};
use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer, WAIT};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";

fn creds(email: &str) -> String {
    format!("userName={}&password={}", email.replace('@', "%40"), PASSWORD.replace(' ', "+"))
}

/// A data directory with a Russian SMS portal (send limits raised for the test) and these users.
fn prepared(users: &[&str]) -> DataDir {
    let data = DataDir::new();
    let limits = ["sms_per_ip_hourly=1000", "sms_per_user_daily=100", "sms_per_phone_daily=100"];
    let mut args = vec!["portal", "set", "--tfa", "sms", "--language", "ru"];
    for l in &limits {
        args.extend(["--set", l]);
    }
    data.run_cli(&args).ok();
    for email in users {
        data.run_cli(&["user", "add", "--email", email, "--password", PASSWORD]).ok();
    }
    data
}

fn options(env: &[(String, String)]) -> ServerOptions {
    env.iter().fold(ServerOptions::new(), |o, (k, v)| o.env(k, v))
}

fn setphone(server: &TestServer, email: &str, phone: &str) {
    let r = server.post_form(
        "/api/2.0/authentication/setphone",
        &format!("{}&mobilePhone={phone}", creds(email)),
    );
    assert_eq!(r.status, 200, "setphone {email}: {}", r.text());
}

/// Step 2 with the code that arrived: a token proves the code was the one the server sent.
fn log_in_with(server: &TestServer, email: &str, code: &str) {
    let r = server.post_form(&format!("/api/2.0/authentication/{code}"), &creds(email));
    assert_eq!(r.status, 200, "step 2 for {email} with {code}: {}", r.text());
    assert!(r.json()["response"]["token"].is_string(), "{}", r.text());
}

/// Waits (bounded) until `what` holds.
#[track_caller]
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn outbox_of(data: &DataDir, env: &[(&str, &str)]) -> Vec<Value> {
    let out = data.run_cli_env(&["sms", "outbox", "--store", "--json", "--last", "100"], env);
    out.json().as_array().cloned().unwrap_or_default()
}

fn outbox(server: &TestServer) -> Vec<Value> {
    outbox_of(server.data(), &[])
}

fn status_of(server: &TestServer, to: &str) -> String {
    outbox(server)
        .iter()
        .find(|m| m["to"] == to)
        .and_then(|m| m["status"].as_str())
        .unwrap_or("missing")
        .to_owned()
}

fn metric(server: &TestServer, gateway: &str, outcome: &str) -> u64 {
    let text = server.get("/metrics").text();
    let series = format!("auth_sms_sends_total{{gateway=\"{gateway}\",outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
        .parse()
        .expect("a count")
}

/// The digits of a recipient as a fake saw it (Twilio's carry a `+`).
fn digits(a: &Accepted) -> String {
    a.to.trim_start_matches('+').to_owned()
}

/// The codes each fake answers for the three failure classes.
struct Codes {
    temporary: u32,
    permanent: u32,
}

fn codes(kind: Kind) -> Codes {
    match kind {
        // SMSC: 9 = too many identical requests; 7 = invalid phone number.
        Kind::Smsc => Codes { temporary: 9, permanent: 7 },
        // Twilio: 21611 = the sender's queue is full; 21408 = region not enabled.
        Kind::Twilio => Codes { temporary: 21611, permanent: 21408 },
        // Clickatell: 19 = internal error, please retry; 25 = invalid recipient.
        Kind::Clickatell => Codes { temporary: 19, permanent: 25 },
        // SMS.ru: 220 = service temporarily unavailable; 207 = no route to the number.
        Kind::SmsRu => Codes { temporary: 220, permanent: 207 },
        // The webhook: 503 and 422 by status.
        Kind::Webhook => Codes { temporary: 503, permanent: 422 },
    }
}

/// Every failure class against one gateway, one message at a time.
fn every_class_through(kind: Kind) {
    let users =
        ["a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"];
    let phones = ["79123450001", "79123450002", "79123450003", "79123450004", "79123450005"];
    let fake = FakeProvider::start(kind);
    let gw = fake.gateway();
    let server = TestServer::start_in(prepared(&users), options(&fake.server_env()));
    let Codes { temporary, permanent } = codes(kind);

    // A 5xx, then success: the code arrives once and logs in; the Russian text is intact.
    fake.script(&[Step::Status(500), Step::Accept]);
    setphone(&server, users[0], phones[0]);
    let first = fake.wait_for(1);
    assert_eq!(digits(&first[0]), phones[0]);
    assert!(first[0].text.starts_with("Код: "), "{gw}: {:?}", first[0].text);
    log_in_with(&server, users[0], &first[0].code());

    // A 429, then an answer that comes after the deadline (2 s), then success.
    fake.script(&[Step::Status(429), Step::Late(Duration::from_millis(3500)), Step::Accept]);
    let before = fake.requests();
    setphone(&server, users[1], phones[1]);
    let second = fake.wait_for(2);
    assert!(fake.requests() >= before + 3, "{gw}: delivered without the retries");
    assert_eq!(digits(&second[1]), phones[1]);
    log_in_with(&server, users[1], &second[1].code());

    // The provider's own "try later" code, then success.
    fake.script(&[Step::Error(temporary), Step::Accept]);
    setphone(&server, users[2], phones[2]);
    let third = fake.wait_for(3);
    log_in_with(&server, users[2], &third[2].code());

    // A permanent refusal: dropped at once, with an audit event.
    fake.script(&[Step::Error(permanent)]);
    let before = fake.requests();
    setphone(&server, users[3], phones[3]);
    wait_until("the refused message to be dropped", || status_of(&server, phones[3]) == "dropped");
    assert_eq!(fake.requests(), before + 1, "{gw}: a refused message was tried again");
    let audit = server.run_cli(&["audit", "--action", "SmsUndeliverable", "--json"]).json();
    let events = audit.as_array().expect("a list");
    assert_eq!(events.len(), 1, "{gw}: {audit}");
    let reason = events[0]["reason"].as_str().expect("a reason");
    assert!(reason.contains("+7912***0004") && reason.contains(gw), "{gw}: {reason}");
    assert_eq!(events[0]["code"], 9012);

    // Credentials the provider stops accepting: retried, an error logged on every attempt, and the
    // message goes once they are right again.
    fake.reject_credentials(true);
    let before = fake.credential_refusals();
    setphone(&server, users[4], phones[4]);
    wait_until("two refused attempts", || fake.credential_refusals() >= before + 2);
    wait_until("an error logged per refused attempt", || {
        server.stderr().matches("sms provider refused the account").count() >= 2
    });
    fake.reject_credentials(false);
    let fifth = fake.wait_for(4);
    assert_eq!(digits(&fifth[3]), phones[4]);
    log_in_with(&server, users[4], &fifth[3].code());
    assert_eq!(fake.accepted().len(), 4, "{gw}: a message arrived twice: {:?}", fake.accepted());

    // Every attempt counted by gateway and outcome.
    assert_eq!(metric(&server, gw, "sent"), 4);
    assert_eq!(metric(&server, gw, "permanent"), 1);
    // The 500, the 429, the late answer and the "try later" code (and any attempt a loaded test
    // machine made too slow).
    assert!(metric(&server, gw, "temporary") >= 4);
    assert!(metric(&server, gw, "credentials") >= 2);

    assert_eq!(fake.violations(), Vec::<String>::new(), "{gw}: the server broke the contract");
    let log = server.stderr();
    for secret in fake.secrets() {
        assert!(!log.contains(secret), "{gw}: a credential reached the log:\n{log}");
    }
    assert!(!log.contains("Код") && !log.contains("Code:"), "{gw}: a text reached the log:\n{log}");
}

#[test]
fn smsc_delivers_and_classifies_every_failure() {
    every_class_through(Kind::Smsc);
}

#[test]
fn twilio_delivers_and_classifies_every_failure() {
    every_class_through(Kind::Twilio);
}

#[test]
fn clickatell_delivers_and_classifies_every_failure() {
    every_class_through(Kind::Clickatell);
}

#[test]
fn smsru_delivers_and_classifies_every_failure() {
    every_class_through(Kind::SmsRu);
}

#[test]
fn the_signed_webhook_delivers_and_classifies_every_failure() {
    every_class_through(Kind::Webhook);
}

/// `sms test` routes like the outbox, prints the outcome class and the answer, never a credential,
/// and exits 1 unless the message went.
#[test]
fn sms_test_routes_by_prefix_and_prints_the_outcome() {
    let smsc = FakeProvider::start(Kind::Smsc);
    let usa = FakeProvider::start_as(Kind::Clickatell, "clickatell_usa");
    let mut env = smsc.server_env();
    env.extend(usa.gateway_env());
    // Upstream's arrangement: US numbers through the second Clickatell account.
    let routes = "[[sms.routes]]\nprefix = \"1\"\ngateway = \"clickatell_usa\"\n";
    let data = DataDir::new();
    let config = data.path().with_extension("toml");
    std::fs::write(&config, routes).expect("config file");
    env.push(("AUTH_CONFIG".to_owned(), config.display().to_string()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cli = |args: &[&str]| data.run_cli_env(args, &env_refs);

    let out = cli(&["sms", "test", "--to", "+1 (202) 555-0123"]);
    let stdout = out.ok().to_owned();
    assert!(stdout.contains("gateway: clickatell_usa\n"), "{stdout}");
    assert!(
        stdout.contains("to:      +1202***0123\n") && stdout.contains("outcome: sent\n"),
        "{stdout}"
    );
    assert!(stdout.contains("answer:  apiMessageId "), "{stdout}");
    assert_eq!(digits(&usa.wait_for(1)[0]), "12025550123");

    let out = cli(&["sms", "test", "--to", "+7 912 345-67-89", "--text", "Проверка связи"]);
    assert!(out.ok().contains("gateway: smsc\n"), "{}", out.stdout);
    let got = smsc.wait_for(1);
    assert_eq!(
        (digits(&got[0]), got[0].text.as_str()),
        ("79123456789".to_owned(), "Проверка связи")
    );

    smsc.script(&[Step::Error(7)]);
    let out = cli(&["sms", "test", "--to", "79123456789"]);
    let stderr = out.err().to_owned();
    assert!(out.stdout.contains("outcome: permanent\n"), "{}", out.stdout);
    assert!(out.stdout.contains("smsc error_code 7 (invalid phone)"), "{}", out.stdout);
    assert!(stderr.contains("the test message was not sent (permanent)"), "{stderr}");

    smsc.reject_credentials(true);
    let out = cli(&["sms", "test", "--to", "79123456789"]);
    out.err();
    assert!(out.stdout.contains("outcome: credentials\n"), "{}", out.stdout);
    for secret in smsc.secrets().into_iter().chain(usa.secrets()) {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "{secret} shown");
    }
    assert_eq!(smsc.violations(), Vec::<String>::new());
    assert_eq!(usa.violations(), Vec::<String>::new());
}

/// Two nodes on one PostgreSQL database deliver through a webhook receiver that answers slowly:
/// every message arrives exactly once (counted by its idempotency key) and none is lost, though both
/// nodes' workers claim from the same outbox at once.
#[test]
fn two_nodes_and_a_slow_webhook_deliver_every_message_exactly_once() {
    let Some(db) = crate::scaleout::Db::create("sms_webhook") else { return };
    let users: Vec<String> = (0..12).map(|i| format!("u{i}@example.com")).collect();
    let phones: Vec<String> = (0..12).map(|i| format!("7912346{i:04}")).collect();
    let data = DataDir::new();
    let db_env = [("AUTH_DATABASE_URL", db.url())];
    let cli = |args: &[&str]| data.run_cli_env(args, &db_env).ok().to_owned();
    cli(&[
        "portal",
        "set",
        "--tfa",
        "sms",
        "--set",
        "sms_per_ip_hourly=1000",
        "--set",
        "sms_per_user_daily=100",
    ]);
    for u in &users {
        cli(&["user", "add", "--email", u, "--password", PASSWORD]);
    }
    let receiver = FakeProvider::start(Kind::Webhook);
    receiver.answer_after(Duration::from_millis(300));
    let mut env = receiver.server_env();
    env.push(("AUTH_DATABASE_URL".to_owned(), db.url().to_owned()));
    // A deadline well beyond the receiver's pace, so no attempt times out.
    env.push(("AUTH_SMS__WEBHOOK__TIMEOUT_SECS".to_owned(), "5".to_owned()));
    let a = TestServer::start_in(data.share(), options(&env));
    let b = TestServer::start_in(data.share(), options(&env));

    std::thread::scope(|s| {
        for (i, (user, phone)) in users.iter().zip(&phones).enumerate() {
            let node = if i % 2 == 0 { &a } else { &b };
            s.spawn(move || {
                let r: Response = node.send(
                    Request::post("/api/2.0/authentication/setphone")
                        .body(FORM, format!("{}&mobilePhone={phone}", creds(user))),
                );
                assert_eq!(r.status, 200, "{}", r.text());
            });
        }
    });
    let got = receiver.wait_for(users.len());
    // Time for a second delivery of any message to show.
    std::thread::sleep(Duration::from_millis(1500));
    let got_after = receiver.accepted();
    assert_eq!(got_after.len(), got.len(), "a message arrived twice: {got_after:?}");
    let mut keys: Vec<String> = got_after.iter().map(|m| m.key.clone().expect("a key")).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), users.len(), "one idempotency key per message: {got_after:?}");
    let mut to: Vec<String> = got_after.iter().map(digits).collect();
    to.sort();
    assert_eq!(to, phones, "every message arrived");
    assert_eq!(receiver.violations(), Vec::<String>::new());
    wait_until("every message marked sent", || {
        let messages = outbox_of(&data, &db_env);
        messages.len() == users.len() && messages.iter().all(|m| m["status"] == "sent")
    });
    // Every attempt went through on the first try, on one node or the other.
    let sent_by = |node: &TestServer| metric(node, "webhook", "sent");
    assert_eq!(sent_by(&a) + sent_by(&b), users.len() as u64);
}
