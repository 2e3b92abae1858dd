//! The metrics of issue 17 (spec §13) over real HTTP: a flow of logins, a wrong second-factor code,
//! a throttled login and two SMS sends, then `/metrics` scraped from its own listener
//! (`metrics_listen`), parsed with a real Prometheus text parser (the prometheus-parse crate) and
//! checked with `promtool check metrics` (Debian's `prometheus` package) for every series
//! `docs/metrics.md` lists, with the values the flow must have left.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer, skip};
use prometheus_parse::{Scrape, Value};

const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";
const PASSWORD: &str = "correct horse battery";

fn creds(user: &str, password: &str) -> String {
    format!("userName={user}&password={}", password.replace(' ', "+"))
}

fn add_user(data: &DataDir, email: &str) {
    data.run_cli(&["user", "add", "--email", email, "--password", PASSWORD, "--first-name", "X"])
        .ok();
}

/// The address `serve` printed for the metrics listener.
fn metrics_addr(s: &TestServer) -> SocketAddr {
    s.stdout()
        .lines()
        .find_map(|l| {
            l.strip_prefix("metrics on http://")?.strip_suffix("/metrics").map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no metrics line in\n{}", s.stdout()))
        .parse()
        .unwrap()
}

fn scrape(addr: SocketAddr) -> (Response, Scrape) {
    let r = Request::get("/metrics").send(addr);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    (r, parsed)
}

/// The value of the sample `name` whose labels include `labels` (and no other sample matches).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?} names {} series", matching.len());
    matching.first().map(|s| match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
        Value::Summary(_) => panic!("no summaries here"),
    })
}

fn must(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(scrape, name, labels).unwrap_or_else(|| {
        let names: Vec<_> = scrape.samples.iter().map(|s| (&s.metric, &s.labels)).collect();
        panic!("{name} {labels:?} missing from {names:#?}")
    })
}

/// A series the flow must have left: its name, some of its labels, and its value when it is exact.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<f64>);

/// `promtool check metrics` on the exposition: the Prometheus project's own parser and linter.
fn promtool_check(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        skip("promtool is not installed (Debian's `prometheus` package; .ci/run installs it)");
        return;
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}");
}

#[test]
fn issue_17_every_series_is_present_after_a_flow_and_parses() {
    let data = DataDir::new();
    data.run_cli(&["portal", "set", "--tfa", "sms"]).ok();
    add_user(&data, ADA);
    add_user(&data, BOB);
    // Five runtime workers, which the default (half the cores) picks only on ten or eleven cores.
    let options = ServerOptions::new()
        .env("AUTH_METRICS_LISTEN", "127.0.0.1:0")
        .env("AUTH_RUNTIME__WORKERS", "5");
    let s = TestServer::start_in(data, options);
    let metrics = metrics_addr(&s);
    assert_ne!(metrics, s.addr());

    // An SMS send and its code: the phone is set and activated (step 2 counts as an SMS login).
    let r = s.post_form(
        "/api/2.0/authentication/setphone",
        &format!("{}&mobilePhone=79123456789", creds(ADA, PASSWORD)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let code = s.wait_for_sms(1)[0].code();
    let r = s.post_form(&format!("/api/2.0/authentication/{code}"), &creds(ADA, PASSWORD));
    assert_eq!(r.status, 200, "{}", r.text());
    // A password login that now needs its second factor, which sends the second SMS.
    let r = s.post_form("/api/2.0/authentication", &creds(ADA, PASSWORD));
    assert_eq!(r.status, 200, "{}", r.text());
    let code = s.wait_for_sms(2)[1].code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = s.post_form(&format!("/api/2.0/authentication/{wrong}"), &creds(ADA, PASSWORD));
    assert_eq!(r.status, 401, "{}", r.text());
    // Wrong passwords until the login throttle (5 a minute by default) engages.
    for _ in 0..5 {
        let r = s.post_form("/api/2.0/authentication", &creds(BOB, "wrong"));
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = s.post_form("/api/2.0/authentication", &creds(BOB, "wrong"));
    assert_eq!(r.status, 429, "{}", r.text());

    // The main listener no longer serves the metrics once they have their own.
    assert_eq!(s.get("/metrics").status, 404);
    assert_eq!(Request::get("/api/2.0/capabilities").send(metrics).status, 404);
    assert_eq!(Request::get("/healthz").send(metrics).status, 200);

    // The gateway's counter moves just after the file line is written: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (response, m) = loop {
        let (response, m) = scrape(metrics);
        let sent = value(&m, "auth_sms_sends_total", &[("gateway", "file"), ("outcome", "sent")]);
        if sent == Some(2.0) || Instant::now() > deadline {
            break (response, m);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = response.text();
    assert!(
        response.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.header("content-type")
    );

    let want: &[Expected<'_>] = &[
        // Requests by route (names from the endpoint table) and exact status.
        ("auth_http_requests_total", &[("route", "setphone"), ("status", "200")], Some(1.0)),
        ("auth_http_requests_total", &[("route", "code"), ("status", "200")], Some(1.0)),
        ("auth_http_requests_total", &[("route", "code"), ("status", "401")], Some(1.0)),
        ("auth_http_requests_total", &[("route", "authentication"), ("status", "401")], Some(5.0)),
        ("auth_http_requests_total", &[("route", "authentication"), ("status", "429")], Some(1.0)),
        // What a listener does not serve counts as an unknown path: /metrics on the main one and
        // the API on the metrics one.
        ("auth_http_requests_total", &[("route", "not_found"), ("status", "404")], Some(2.0)),
        ("auth_http_requests_total", &[("route", "healthz"), ("status", "200")], Some(1.0)),
        // Latency histograms by route and status class (the largest bucket is the count).
        (
            "auth_http_request_seconds",
            &[("route", "authentication"), ("status_class", "4xx")],
            Some(6.0),
        ),
        (
            "auth_http_request_seconds",
            &[("route", "authentication"), ("status_class", "2xx")],
            Some(1.0),
        ),
        (
            "auth_http_request_seconds_count",
            &[("route", "code"), ("status_class", "2xx")],
            Some(1.0),
        ),
        ("auth_http_request_seconds_sum", &[("route", "code"), ("status_class", "4xx")], None),
        // The hashing pool: nothing waits now, and every verification waited a measured while.
        ("auth_hashing_queue_depth", &[], Some(0.0)),
        ("auth_hashing_queue_capacity", &[], Some(64.0)),
        ("auth_hashing_workers", &[], Some(2.0)),
        // The runtime was started with the configured workers.
        ("auth_runtime_workers", &[], Some(5.0)),
        ("auth_hashing_wait_seconds_count", &[], None),
        ("auth_hashing_wait_seconds_sum", &[], None),
        // No flood, so the runtime never paused for one.
        ("auth_hashing_flood_pauses_total", &[], Some(0.0)),
        // The outbox: both messages went.
        ("auth_outbox_depth", &[], Some(0.0)),
        ("auth_outbox_oldest_age_seconds", &[], Some(0.0)),
        // SMS sends by gateway and outcome, zeros included for the gateway in use.
        ("auth_sms_sends_total", &[("gateway", "file"), ("outcome", "sent")], Some(2.0)),
        ("auth_sms_sends_total", &[("gateway", "file"), ("outcome", "temporary")], Some(0.0)),
        // Logins by factor and result.
        ("auth_logins_total", &[("factor", "sms"), ("result", "ok")], Some(1.0)),
        ("auth_logins_total", &[("factor", "sms"), ("result", "invalid")], Some(1.0)),
        ("auth_logins_total", &[("factor", "password"), ("result", "tfa_required")], Some(1.0)),
        ("auth_logins_total", &[("factor", "password"), ("result", "invalid")], Some(5.0)),
        ("auth_logins_total", &[("factor", "password"), ("result", "throttled")], Some(1.0)),
        // Throttle engagements by rule.
        ("auth_throttle_engagements_total", &[("rule", "login")], Some(1.0)),
        // The build.
        ("auth_build_info", &[("version", env!("CARGO_PKG_VERSION"))], Some(1.0)),
    ];
    for (name, labels, expected) in want {
        let got = must(&m, name, labels);
        if let Some(expected) = expected {
            assert_eq!(got, *expected, "{name} {labels:?}\n{text}");
        }
    }
    // Every password check (setphone, two step 2s, step 1 and five wrong ones) waited in the queue.
    assert!(must(&m, "auth_hashing_wait_seconds_count", &[]) >= 9.0, "{text}");
    assert!(
        must(&m, "auth_http_request_seconds_sum", &[("route", "code"), ("status_class", "4xx")])
            > 0.0
    );
    // Bounded labels: every route is a table name, never a raw path.
    let routes: HashMap<&str, ()> =
        m.samples.iter().filter_map(|s| s.labels.get("route")).map(|r| (r, ())).collect();
    assert!(routes.keys().all(|r| !r.contains('/')), "{routes:?}");
    // No secret reaches a label: the logins, the phone, the codes.
    for secret in [ADA, BOB, "79123456789", &code, PASSWORD] {
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
    promtool_check(&text);

    // A scraper that asks for OpenMetrics gets it, with its end marker.
    let om = Request::get("/metrics")
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .send(metrics);
    assert!(
        om.header("content-type").is_some_and(|t| t.starts_with("application/openmetrics-text"))
    );
    let om = om.text();
    assert!(om.ends_with("# EOF\n") && om.contains("# TYPE auth_logins counter\n"), "{om}");
}

/// Issue 18: while a login flood keeps the hashing queue full, the excess is answered 503 `busy` and
/// the runtime's worker pauses before waiting for work (`runtime.flood_pause_ms`), which the binary
/// wires to the same pool `/metrics` reports; every login still gets its answer.
#[test]
fn issue_18_a_full_hashing_queue_makes_the_runtime_pause_and_count_it() {
    // One hashing thread with room for one waiting job, and a verification slow enough (the dummy
    // hash of an unknown login, at this cost) that the queue stays full while the flood arrives.
    let options = ServerOptions::new()
        .env("AUTH_METRICS_LISTEN", "127.0.0.1:0")
        .env("AUTH_HASHING__WORKERS", "1")
        .env("AUTH_HASHING__QUEUE", "1")
        .env("AUTH_HASHING__M_COST_KIB", "32768")
        .env("AUTH_HASHING__T_COST", "4")
        .env("AUTH_RUNTIME__FLOOD_PAUSE_MS", "20");
    let s = TestServer::start_in(DataDir::new(), options);
    let metrics = metrics_addr(&s);
    let (_, before) = scrape(metrics);
    assert_eq!(must(&before, "auth_hashing_flood_pauses_total", &[]), 0.0);

    let addr = s.addr();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let flood: Vec<_> = (0..8)
            .map(|i| {
                scope.spawn(move || {
                    let form = creds(&format!("nobody{i}@example.com"), "a guess");
                    let r = Request::post("/api/2.0/authentication")
                        .body("application/x-www-form-urlencoded", form)
                        .send(addr);
                    if r.status == 503 {
                        assert!(r.text().contains(r#""code":"busy""#), "{}", r.text());
                    }
                    r.status
                })
            })
            .collect();
        flood.into_iter().map(|t| t.join().unwrap()).collect()
    });
    // Two at most are hashed or waiting at a time; the rest of the eight arrive to a full queue.
    assert!(statuses.iter().all(|s| *s == 401 || *s == 503), "{statuses:?}");
    assert!(statuses.contains(&401) && statuses.contains(&503), "{statuses:?}");

    let (_, after) = scrape(metrics);
    let pauses = must(&after, "auth_hashing_flood_pauses_total", &[]);
    assert!(pauses >= 1.0, "the worker never paused under the flood ({pauses})");
    // With the flood over the queue has room again, and nothing pauses any more.
    let idle = must(&after, "auth_hashing_queue_depth", &[]);
    assert_eq!(idle, 0.0);
    assert_eq!(s.get("/healthz").status, 200);
    let (_, later) = scrape(metrics);
    assert_eq!(must(&later, "auth_hashing_flood_pauses_total", &[]), pauses);
}
