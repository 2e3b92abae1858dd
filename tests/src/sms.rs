//! Fake SMS providers for the black-box tests (spec §12): SMSC, Twilio, Clickatell, SMS.ru and a
//! signed webhook receiver, each on loopback HTTPS ([`crate::https`]) speaking its provider's documented
//! HTTP contract and refusing everything else.
//!
//! Every request is checked against the contract before anything else: the method and path, the
//! authentication (the password, Basic credentials, API key or signature the fake was given), the
//! parameter names (an unknown one is refused), the encoding (form or query fields decoded as UTF-8,
//! `charset=utf-8` where the API needs it) and the values' shapes (E.164 for Twilio, bare digits for
//! the others). A request that breaks the contract is answered the way that provider answers such a
//! request and is also written down as a *violation*, which a test asserts never happened: the server
//! under test must get every call right, not merely survive the refusal.
//!
//! A request that keeps the contract is answered by the next [`Step`] of the fake's script (then by
//! acceptance once the script is used up): accept, one of the provider's documented error codes, a bare
//! HTTP status, or an acceptance that comes too late. A message counts as [`Accepted`] only when the
//! fake answered success in time, so "arrives once" is checked on what the provider really took.
//! [`FakeProvider::reject_credentials`] makes the fake refuse the credentials it was given (an operator
//! who rotated a key), and [`FakeProvider::server_env`] is the configuration that points the server under
//! test at the fake, with secrets through the environment or a file depending on the provider.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::Mac as _;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::https::{HttpsServer, Received, Reply};
use crate::{WAIT, base64};

/// Which provider a fake plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// SMSC (`/sys/send.php`).
    Smsc,
    /// Twilio (`/2010-04-01/Accounts/{sid}/Messages.json`).
    Twilio,
    /// Clickatell (`/messages/http/send`); `gateway` names it `clickatell` or `clickatell_usa`.
    Clickatell,
    /// SMS.ru (`/sms/send`).
    SmsRu,
    /// The signed webhook (`/hooks/sms`).
    Webhook,
}

/// What the fake does with the next request that keeps the contract.
#[derive(Clone, Debug)]
pub enum Step {
    /// Take the message.
    Accept,
    /// Refuse it with this documented error code (for the webhook: this HTTP status).
    Error(u32),
    /// Answer this HTTP status with a body that is not the provider's JSON (a proxy's 502, a 429).
    Status(u16),
    /// Take the message, but answer only after this delay (longer than the client waits).
    Late(Duration),
}

/// A message the fake took (and said so in time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The recipient as sent (`+1…` for Twilio, digits otherwise).
    pub to: String,
    /// The text, decoded.
    pub text: String,
    /// The webhook's `Idempotency-Key`.
    pub key: Option<String>,
}

impl Accepted {
    /// The run of six digits in the text.
    pub fn code(&self) -> String {
        let digits: String = self.text.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(digits.len(), 6, "no 6-digit code in {:?}", self.text);
        digits
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Step>,
    accepted: Vec<Accepted>,
    violations: Vec<String>,
    credential_refusals: usize,
    requests: usize,
    reject_credentials: bool,
    answer_delay: Option<Duration>,
}

// Credentials of the fakes: long enough that a test can search logs for them.
const SMSC_LOGIN: &str = "acme-login";
const SMSC_PASSWORD: &str = "smsc-pass-9f8e7d";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-token-5a4b3c";
const TWILIO_FROM: &str = "+15005550006";
const CLICKATELL_KEY: &str = "clickatell-key-Zq9+/x";
const SMSRU_API_ID: &str = "SMSRU-API-ID-1F2E3D";
const WEBHOOK_SECRET: &str = "webhook-secret-77aa";

/// The webhook's path.
pub const WEBHOOK_PATH: &str = "/hooks/sms";

/// A running fake provider.
pub struct FakeProvider {
    kind: Kind,
    gateway: &'static str,
    server: HttpsServer,
    state: Arc<Mutex<State>>,
    dir: TempDir,
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider").field("gateway", &self.gateway).finish_non_exhaustive()
    }
}

impl FakeProvider {
    /// A fake of `kind` with an empty script (it accepts everything that keeps the contract).
    pub fn start(kind: Kind) -> Self {
        let gateway = match kind {
            Kind::Smsc => "smsc",
            Kind::Twilio => "twilio",
            Kind::Clickatell => "clickatell",
            Kind::SmsRu => "smsru",
            Kind::Webhook => "webhook",
        };
        Self::start_as(kind, gateway)
    }

    /// A fake of `kind` configured as the gateway `gateway` (`clickatell_usa` for a second Clickatell).
    pub fn start_as(kind: Kind, gateway: &'static str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = HttpsServer::start(move |r| answer(kind, &shared, r));
        let dir = tempfile::Builder::new().prefix("auth-sms-fake-").tempdir().expect("tempdir");
        Self { kind, gateway, server, state, dir }
    }

    /// Appends steps to the script.
    pub fn script(&self, steps: &[Step]) {
        self.state.lock().expect("state").script.extend(steps.iter().cloned());
    }

    /// Makes every later answer wait this long (a slow receiver).
    pub fn answer_after(&self, delay: Duration) {
        self.state.lock().expect("state").answer_delay = Some(delay);
    }

    /// While true, the fake refuses the credentials the server was given.
    pub fn reject_credentials(&self, reject: bool) {
        self.state.lock().expect("state").reject_credentials = reject;
    }

    /// Requests refused for their credentials so far.
    pub fn credential_refusals(&self) -> usize {
        self.state.lock().expect("state").credential_refusals
    }

    /// Every request the fake has read so far.
    pub fn requests(&self) -> usize {
        self.state.lock().expect("state").requests
    }

    /// The messages taken so far, oldest first.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.lock().expect("state").accepted.clone()
    }

    /// Contract violations seen so far (there must be none).
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().expect("state").violations.clone()
    }

    /// Waits (bounded by [`WAIT`]) until `count` messages were taken; returns them all.
    #[track_caller]
    pub fn wait_for(&self, count: usize) -> Vec<Accepted> {
        let deadline = Instant::now() + WAIT;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "{}: waited {WAIT:?} for {count} messages, got {accepted:?}; violations: {:?}",
                self.gateway,
                self.violations()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The gateway's name in the server's configuration.
    pub fn gateway(&self) -> &'static str {
        self.gateway
    }

    /// The credentials the fake accepts, to search logs and outputs for.
    pub fn secrets(&self) -> Vec<&'static str> {
        match self.kind {
            Kind::Smsc => vec![SMSC_PASSWORD],
            Kind::Twilio => vec![TWILIO_TOKEN],
            Kind::Clickatell => vec![CLICKATELL_KEY],
            Kind::SmsRu => vec![SMSRU_API_ID],
            Kind::Webhook => vec![WEBHOOK_SECRET],
        }
    }

    /// The CA file the server must trust to reach the fake.
    pub fn ca_file(&self) -> PathBuf {
        self.server.ca_file()
    }

    /// Writes a secret file (mode 0600) and returns its path.
    fn secret_file(&self, name: &str, value: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{value}\n")).expect("writing a secret file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path.display().to_string()
    }

    /// The environment that makes this fake a configured gateway of the server (its `base_url`, the
    /// CA, a 2-second deadline and its credentials), without choosing it as the default.
    pub fn gateway_env(&self) -> Vec<(String, String)> {
        let section = format!("AUTH_SMS__{}__", self.gateway.to_ascii_uppercase());
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: &str| env.push((format!("{section}{k}"), v.to_owned()));
        let ca = self.ca_file().display().to_string();
        set("CA_FILE", &ca);
        set("TIMEOUT_SECS", "2");
        match self.kind {
            Kind::Smsc => {
                set("BASE_URL", &self.server.url());
                set("LOGIN", SMSC_LOGIN);
                set("PASSWORD_FILE", &self.secret_file("smsc.password", SMSC_PASSWORD));
                set("SENDER", "ACME");
            }
            Kind::Twilio => {
                set("BASE_URL", &self.server.url());
                set("ACCOUNT_SID", TWILIO_SID);
                set("AUTH_TOKEN", TWILIO_TOKEN);
                set("FROM", TWILIO_FROM);
            }
            Kind::Clickatell => {
                set("BASE_URL", &self.server.url());
                set("API_KEY_FILE", &self.secret_file("clickatell.key", CLICKATELL_KEY));
            }
            Kind::SmsRu => {
                set("BASE_URL", &self.server.url());
                set("API_ID", SMSRU_API_ID);
            }
            Kind::Webhook => {
                set("URL", &format!("{}{WEBHOOK_PATH}", self.server.url()));
                set("SECRET_FILE", &self.secret_file("webhook.secret", WEBHOOK_SECRET));
            }
        }
        env
    }

    /// [`FakeProvider::gateway_env`] with this fake as the default gateway.
    pub fn server_env(&self) -> Vec<(String, String)> {
        let mut env = self.gateway_env();
        env.push(("AUTH_SMS__GATEWAY".to_owned(), self.gateway.to_owned()));
        env
    }
}

/// What the fake answers one request: the contract first, then the credentials, then the script.
fn answer(kind: Kind, state: &Mutex<State>, r: &Received) -> Reply {
    let (reply, delay) = {
        let mut s = state.lock().expect("state");
        s.requests += 1;
        let delay = s.answer_delay;
        let reply = match check(kind, r) {
            Err(Refusal::Contract(why, reply)) => {
                s.violations.push(format!("{why}: {} {}?{}", r.method, r.path, r.query));
                reply
            }
            Err(Refusal::Credentials(reply)) => {
                s.credential_refusals += 1;
                reply
            }
            Ok(_) if s.reject_credentials => {
                s.credential_refusals += 1;
                credentials_refused(kind)
            }
            Ok(message) => match s.script.pop_front().unwrap_or(Step::Accept) {
                Step::Accept => {
                    let reply = accepted(kind, &message);
                    s.accepted.push(message);
                    reply
                }
                Step::Late(after) => accepted(kind, &message).after(after),
                Step::Error(code) => error(kind, code, &message),
                Step::Status(status) => Reply::text(status, "<html>upstream trouble</html>"),
            },
        };
        (reply, delay)
    };
    match (delay, reply.delay) {
        (Some(d), None) => reply.after(d),
        _ => reply,
    }
}

enum Refusal {
    /// The request breaks the documented contract: a bug in the server under test.
    Contract(String, Reply),
    /// The credentials are not the fake's: an operator's mistake, answered as the provider would.
    Credentials(Reply),
}

fn contract(why: impl Into<String>, reply: Reply) -> Refusal {
    Refusal::Contract(why.into(), reply)
}

/// The fields of a request, from the query (GET) or the form body (POST), refusing any name twice.
fn fields(r: &Received, allowed: &[&str]) -> Result<Vec<(String, String)>, String> {
    let pairs = if r.method == "GET" {
        r.query_pairs()
    } else {
        if !r.query.is_empty() {
            return Err("a POST with a query string".to_owned());
        }
        let ct = r.header("content-type").unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return Err(format!("Content-Type {ct:?} instead of a form"));
        }
        r.form_pairs()
    };
    for (i, (k, v)) in pairs.iter().enumerate() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("unknown parameter {k:?}"));
        }
        if pairs.iter().skip(i + 1).any(|(other, _)| other == k) {
            return Err(format!("parameter {k:?} given twice"));
        }
        // Percent-decoding gives bytes; anything but UTF-8 turns into U+FFFD.
        if v.contains('\u{FFFD}') {
            return Err(format!("parameter {k:?} is not UTF-8"));
        }
    }
    Ok(pairs)
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn digits(s: &str) -> bool {
    (7..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn check(kind: Kind, r: &Received) -> Result<Accepted, Refusal> {
    match kind {
        Kind::Smsc => check_smsc(r),
        Kind::Twilio => check_twilio(r),
        Kind::Clickatell => check_clickatell(r),
        Kind::SmsRu => check_smsru(r),
        Kind::Webhook => check_webhook(r),
    }
}

// ----- SMSC: https://smsc.ru/api/http/send/sms/ ------------------------------------------------

fn smsc_error(code: u32) -> Reply {
    let text = match code {
        1 => "parameters error",
        2 => "authorise error",
        3 => "no money",
        4 => "IP is blocked",
        5 => "invalid date format",
        6 => "message is denied",
        7 => "invalid phone",
        8 => "cannot deliver",
        9 => "duplicate request, wait a minute",
        _ => "error",
    };
    // SMSC reports errors with HTTP 200.
    Reply::json(200, &json!({"error": text, "error_code": code}))
}

fn check_smsc(r: &Received) -> Result<Accepted, Refusal> {
    if r.path != "/sys/send.php" {
        return Err(contract("wrong path", Reply::text(404, "Not Found")));
    }
    if r.method != "GET" && r.method != "POST" {
        return Err(contract("wrong method", smsc_error(1)));
    }
    let allowed = ["login", "psw", "phones", "mes", "sender", "charset", "fmt"];
    let p = fields(r, &allowed).map_err(|why| contract(why, smsc_error(1)))?;
    if get(&p, "login") != Some(SMSC_LOGIN) || get(&p, "psw") != Some(SMSC_PASSWORD) {
        return Err(Refusal::Credentials(smsc_error(2)));
    }
    // Without charset=utf-8 SMSC reads windows-1251, and Cyrillic arrives garbled.
    if get(&p, "charset") != Some("utf-8") {
        return Err(contract("no charset=utf-8", smsc_error(1)));
    }
    if get(&p, "fmt") != Some("3") {
        return Err(contract("no fmt=3 (JSON answers)", smsc_error(1)));
    }
    if get(&p, "sender").is_some_and(|s| s != "ACME") {
        return Err(contract("another sender than configured", smsc_error(6)));
    }
    let to = get(&p, "phones").filter(|t| digits(t));
    let text = get(&p, "mes").filter(|t| !t.is_empty());
    match (to, text) {
        (Some(to), Some(text)) => {
            Ok(Accepted { to: to.to_owned(), text: text.to_owned(), key: None })
        }
        _ => Err(contract("phones or mes missing or malformed", smsc_error(1))),
    }
}

// ----- Twilio: POST /2010-04-01/Accounts/{AccountSid}/Messages.json ---------------------------

fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

fn check_twilio(r: &Received) -> Result<Accepted, Refusal> {
    let path = format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json");
    if r.path != path {
        return Err(contract(
            "wrong path",
            twilio_error(404, 20404, "The requested resource was not found"),
        ));
    }
    if r.method != "POST" {
        return Err(contract("wrong method", twilio_error(405, 20004, "Method not allowed")));
    }
    let basic = format!("Basic {}", base64(format!("{TWILIO_SID}:{TWILIO_TOKEN}").as_bytes()));
    if r.header("authorization") != Some(basic.as_str()) {
        return Err(Refusal::Credentials(twilio_error(401, 20003, "Authenticate")));
    }
    let allowed = ["To", "From", "MessagingServiceSid", "Body"];
    let p = fields(r, &allowed)
        .map_err(|why| contract(why, twilio_error(400, 21601, "Invalid parameter")))?;
    let Some(to) = get(&p, "To") else {
        return Err(contract(
            "no To",
            twilio_error(400, 21604, "A 'To' phone number is required."),
        ));
    };
    if !to.strip_prefix('+').is_some_and(digits) {
        return Err(contract(
            "To is not E.164",
            twilio_error(400, 21211, "The 'To' number is not a valid phone number."),
        ));
    }
    if get(&p, "From") != Some(TWILIO_FROM) && get(&p, "MessagingServiceSid").is_none() {
        return Err(contract(
            "no From",
            twilio_error(400, 21603, "A 'From' phone number is required."),
        ));
    }
    let Some(body) = get(&p, "Body").filter(|b| !b.is_empty()) else {
        return Err(contract("no Body", twilio_error(400, 21602, "Message body is required.")));
    };
    Ok(Accepted { to: to.to_owned(), text: body.to_owned(), key: None })
}

// ----- Clickatell: GET /messages/http/send?apiKey=&to=&content= -------------------------------

fn clickatell_error(code: u32, to: &str) -> Reply {
    let (status, text, global) = match code {
        1 => (401, "Invalid or missing Integration API Key", true),
        2 => (400, "Account is not active", true),
        7 => (401, "Originating IP address is not approved in your account", true),
        18 => (500, "Internal error", true),
        19 => (503, "Internal error, please retry", true),
        20 => (402, "Insufficient account balance", false),
        21 => (400, "Payload data is malformed", true),
        23 => (400, "Invalid or missing parameter", false),
        25 => (400, "Invalid recipient address", false),
        26 => (400, "Recipient opted out", false),
        41 => (404, "Resource does not exist", true),
        42 => (400, "HTTP method is not supported on this resource", true),
        43 => (400, "Rate limit", true),
        _ => (400, "Error", false),
    };
    if global {
        return Reply::json(
            status,
            &json!({"messages": [], "errorCode": code, "error": text, "errorDescription": text}),
        );
    }
    Reply::json(
        status,
        &json!({
            "messages": [{"apiMessageId": null, "accepted": false, "to": to,
                "errorCode": code, "error": text, "errorDescription": text}],
            "errorCode": null, "error": null, "errorDescription": null
        }),
    )
}

fn check_clickatell(r: &Received) -> Result<Accepted, Refusal> {
    if r.path != "/messages/http/send" {
        return Err(contract("wrong path", clickatell_error(41, "")));
    }
    if r.method != "GET" {
        return Err(contract("wrong method", clickatell_error(42, "")));
    }
    let allowed = ["apiKey", "to", "content", "from"];
    let p = fields(r, &allowed).map_err(|why| contract(why, clickatell_error(23, "")))?;
    if get(&p, "apiKey") != Some(CLICKATELL_KEY) {
        return Err(Refusal::Credentials(clickatell_error(1, "")));
    }
    let Some(to) = get(&p, "to") else {
        return Err(contract("no to", clickatell_error(23, "")));
    };
    // International format without `+` or leading zeros.
    if !digits(to) || to.starts_with('0') {
        return Err(contract("to is not international digits", clickatell_error(25, to)));
    }
    let Some(content) = get(&p, "content").filter(|c| !c.is_empty()) else {
        return Err(contract("no content", clickatell_error(23, to)));
    };
    Ok(Accepted { to: to.to_owned(), text: content.to_owned(), key: None })
}

// ----- SMS.ru: /sms/send?api_id=&to=&msg=&json=1 ---------------------------------------------

fn smsru_request_error(code: u32) -> Reply {
    let text = match code {
        200 => "Неправильный api_id",
        201 => "Не хватает средств на лицевом счету",
        211 => "Метод не найден",
        220 => "Сервис временно недоступен, попробуйте чуть позже",
        500 => "Ошибка на сервере. Повторите запрос.",
        _ => "Ошибка",
    };
    Reply::json(200, &json!({"status": "ERROR", "status_code": code, "status_text": text}))
}

fn smsru_number_error(code: u32, to: &str) -> Reply {
    let text = match code {
        202 => "Неправильно указан номер телефона получателя, либо на него нет маршрута",
        207 => "На этот номер нет маршрута для доставки сообщений",
        230 => "Превышен общий лимит количества сообщений на этот номер в день",
        233 => "Превышен лимит отправки повторных сообщений с кодом на этот номер",
        _ => "Ошибка",
    };
    Reply::json(
        200,
        &json!({"status": "OK", "status_code": 100,
            "sms": {to: {"status": "ERROR", "status_code": code, "status_text": text}},
            "balance": 100.5}),
    )
}

fn check_smsru(r: &Received) -> Result<Accepted, Refusal> {
    if r.path != "/sms/send" {
        return Err(contract("wrong path", smsru_request_error(211)));
    }
    if r.method != "GET" && r.method != "POST" {
        return Err(contract("wrong method", smsru_request_error(211)));
    }
    let allowed = ["api_id", "to", "msg", "json", "from"];
    let p = fields(r, &allowed).map_err(|why| contract(why, smsru_request_error(0)))?;
    if get(&p, "api_id") != Some(SMSRU_API_ID) {
        return Err(Refusal::Credentials(smsru_request_error(200)));
    }
    if get(&p, "json") != Some("1") {
        // Without json=1 SMS.ru answers lines of text.
        return Err(contract("no json=1", Reply::text(200, "100\n000000-10000000\nbalance=1")));
    }
    let Some(to) = get(&p, "to").filter(|t| digits(t)) else {
        return Err(contract("to missing or not digits", smsru_number_error(202, "")));
    };
    let Some(msg) = get(&p, "msg").filter(|m| !m.is_empty()) else {
        return Err(contract("no msg", smsru_request_error(203)));
    };
    Ok(Accepted { to: to.to_owned(), text: msg.to_owned(), key: None })
}

// ----- The webhook: POST JSON, X-Signature, Idempotency-Key ------------------------------------

fn check_webhook(r: &Received) -> Result<Accepted, Refusal> {
    if r.path != WEBHOOK_PATH || !r.query.is_empty() {
        return Err(contract("wrong path", Reply::text(404, "not found")));
    }
    if r.method != "POST" {
        return Err(contract("wrong method", Reply::text(405, "method not allowed")));
    }
    if r.header("content-type") != Some("application/json") {
        return Err(contract("not application/json", Reply::text(415, "json only")));
    }
    // The receiver's check, exactly as docs/sms.md shows it: HMAC-SHA256 of the raw body.
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("hmac key");
    mac.update(&r.body);
    let want = format!("sha256={}", data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()));
    if r.header("x-signature") != Some(want.as_str()) {
        return Err(Refusal::Credentials(Reply::text(401, "bad signature")));
    }
    let Some(key) = r.header("idempotency-key").filter(|k| k.parse::<i64>().is_ok()) else {
        return Err(contract("no numeric Idempotency-Key", Reply::text(400, "no key")));
    };
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|_| contract("body is not JSON", Reply::text(400, "bad json")))?;
    let fields: Vec<&str> =
        body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    if sorted != ["at", "text", "to"] {
        return Err(contract(format!("body fields {fields:?}"), Reply::text(400, "bad body")));
    }
    let to = body["to"].as_str().filter(|t| digits(t));
    let text = body["text"].as_str();
    match (to, text) {
        (Some(to), Some(text)) => {
            Ok(Accepted { to: to.to_owned(), text: text.to_owned(), key: Some(key.to_owned()) })
        }
        _ => Err(contract("to or text malformed", Reply::text(400, "bad body"))),
    }
}

// ----- Answers -----------------------------------------------------------------------------------

fn credentials_refused(kind: Kind) -> Reply {
    match kind {
        Kind::Smsc => smsc_error(2),
        Kind::Twilio => twilio_error(401, 20003, "Authenticate"),
        Kind::Clickatell => clickatell_error(1, ""),
        Kind::SmsRu => smsru_request_error(200),
        Kind::Webhook => Reply::text(401, "bad signature"),
    }
}

fn accepted(kind: Kind, m: &Accepted) -> Reply {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match kind {
        Kind::Smsc => Reply::json(200, &json!({"id": id, "cnt": 1})),
        Kind::Twilio => Reply::json(
            201,
            &json!({
                "sid": format!("SM{id:032x}"), "account_sid": TWILIO_SID, "to": m.to,
                "from": TWILIO_FROM, "body": m.text, "status": "queued", "num_segments": "1",
                "direction": "outbound-api", "api_version": "2010-04-01",
                "error_code": null, "error_message": null,
            }),
        ),
        Kind::Clickatell => Reply::json(
            202,
            &json!({
                "messages": [{"apiMessageId": format!("{id:032x}"), "accepted": true, "to": m.to,
                    "errorCode": null, "error": null, "errorDescription": null}],
                "errorCode": null, "error": null, "errorDescription": null
            }),
        ),
        Kind::SmsRu => Reply::json(
            200,
            &json!({"status": "OK", "status_code": 100,
                "sms": {m.to.as_str(): {"status": "OK", "status_code": 100, "sms_id": format!("000000-{id}")}},
                "balance": 100.5}),
        ),
        Kind::Webhook => Reply::text(200, "ok"),
    }
}

fn error(kind: Kind, code: u32, m: &Accepted) -> Reply {
    match kind {
        Kind::Smsc => smsc_error(code),
        Kind::Twilio => {
            let (status, message) = match code {
                20429 => (429, "Too Many Requests"),
                21211 => (400, "The 'To' number is not a valid phone number."),
                21408 => (400, "Permission to send an SMS has not been enabled for the region"),
                21611 => {
                    (400, "This 'From' number has exceeded the maximum number of queued messages")
                }
                21606 => (
                    400,
                    "The 'From' phone number provided is not a valid message-capable phone number for this destination.",
                ),
                _ => (400, "Error"),
            };
            twilio_error(status, code, message)
        }
        Kind::Clickatell => clickatell_error(code, &m.to),
        Kind::SmsRu => match code {
            202 | 207 | 230..=233 => smsru_number_error(code, &m.to),
            _ => smsru_request_error(code),
        },
        Kind::Webhook => Reply::text(u16::try_from(code).expect("a status"), "refused"),
    }
}
