//! In-process tests of the transport: routing, negotiation, limits, status mapping, cookies and the typed
//! client, against the real `serve` on a loopback port with the in-memory service behind it.

use std::sync::Arc;
use std::time::Duration;

use auth_core::service::NewUser;
use auth_core::testkit::{TestWorld, build_service};
use auth_core::{SignedDuration, TfaMode};
use auth_http::client::{Client, ClientError};
use auth_http::{HttpConfig, Router, serve};
use auth_wire::{ErrorCode, Format};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Srv {
    addr: std::net::SocketAddr,
    w: TestWorld,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(tfa: TfaMode, config: HttpConfig) -> Srv {
    start_world(build_service(), tfa, config).await
}

async fn start_world(w: TestWorld, tfa: TfaMode, config: HttpConfig) -> Srv {
    let portal = w.service.admin().ensure_default_portal().await.unwrap();
    let mut p = (*portal).clone();
    p.settings.tfa = tfa;
    p.settings.time_zone = "Europe/Moscow".into();
    w.service.admin().update_portal(&p).await.unwrap();
    w.service
        .admin()
        .add_user(
            p.id,
            NewUser {
                email: "ada@example.com".into(),
                password: "correct horse".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                is_admin: false,
            },
        )
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = Router::new(w.service.clone(), config);
    let task = tokio::spawn(serve(listener, router, async move {
        let _ = rx.await;
    }));
    Srv { addr, w, stop: Some(tx), task }
}

/// Sends raw bytes, reads the whole response (the request asks the server to close).
async fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn post(path: &str, content_type: Option<&str>, body: &str, extra: &str) -> String {
    let ct = content_type.map(|c| format!("Content-Type: {c}\r\n")).unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: portal.example\r\nConnection: close\r\n{ct}{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: portal.example\r\nConnection: close\r\n{extra}\r\n")
}

#[tokio::test]
async fn plain_login_json_and_xml_with_cookie() {
    let s = start(TfaMode::None, HttpConfig::default()).await;
    let (status, head, body) = raw(
        s.addr,
        &post(
            "//api/2.0/authentication",
            Some("application/x-www-form-urlencoded"),
            "username=ADA%40example.com&password=correct+horse",
            "",
        ),
    )
    .await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        body.starts_with(r#"{"count":1,"status":0,"statusCode":200,"response":{"token":""#),
        "{body}"
    );
    assert!(
        body.contains(r#""expires":"2026-02-09T10:46:24.4206897+03:00"}}"#),
        "portal time zone: {body}"
    );
    assert!(head.contains("content-type: application/json; charset=utf-8"), "{head}");
    let cookie = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie")).unwrap();
    assert!(
        cookie.contains("asc_auth_key=") && cookie.contains("Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Expires=Mon, 09 Feb 2026 07:46:24 GMT"), "{cookie}");
    let token = body.split(r#""token":""#).nth(1).unwrap().split('"').next().unwrap().to_owned();

    let (status, _, body) = raw(
        s.addr,
        &get("/api/2.0/people/@self.xml", &format!("Authorization: Bearer {token}\r\n")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(
            "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><id>"
        ),
        "{body}"
    );
    let (_, _, body) = raw(
        s.addr,
        &get("/api/2.0/authentication", &format!("Cookie: a=b; asc_auth_key={token}\r\n")),
    )
    .await;
    assert_eq!(body, r#"{"count":1,"status":0,"statusCode":200,"response":true}"#);
    let (_, head, body) = raw(
        s.addr,
        &post("/api/2.0/authentication/logout", None, "", &format!("Authorization: {token}\r\n")),
    )
    .await;
    assert_eq!(body, r#"{"count":1,"status":0,"statusCode":200,"response":true}"#);
    assert!(head.contains("asc_auth_key=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{head}");
    let (status, _, body) =
        raw(s.addr, &get("/api/2.0/authentication", &format!("Authorization: {token}\r\n"))).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"count":1,"status":0,"statusCode":200,"response":false}"#)
    );
    let (status, _, body) =
        raw(s.addr, &get("/api/2.0/people/@self", &format!("Authorization: {token}\r\n"))).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        r#"{"status":1,"statusCode":401,"error":{"message":"Unauthorized","code":"unauthorized"}}"#
    );
}

#[tokio::test]
async fn errors_statuses_and_negotiation() {
    let s = start(TfaMode::None, HttpConfig { body_limit: 1024, ..HttpConfig::default() }).await;
    let json = Some("application/json");
    let (status, _, body) = raw(
        s.addr,
        &post(
            "/api/2.0/authentication",
            json,
            r#"{"userName":"ada@example.com","password":"nope"}"#,
            "",
        ),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            r#"{"status":1,"statusCode":401,"error":{"message":"User authentication failed","code":"invalid_credentials"}}"#
        )
    );
    let (status, _, body) = raw(
        s.addr,
        &post("/api/2.0/authentication", json, r#"{"userName":"ada@example.com"}"#, ""),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains(r#""code":"bad_request""#) && body.contains("password empty"), "{body}");
    let (status, _, _) = raw(s.addr, &post("/api/2.0/authentication", json, "[1,2]", "")).await;
    assert_eq!(status, 400);
    let (status, _, body) =
        raw(s.addr, &post("/api/2.0/authentication", Some("text/plain"), "x=1", "")).await;
    assert_eq!(status, 415, "{body}");
    let big = "a".repeat(2000);
    let (status, _, body) = raw(s.addr, &post("/api/2.0/authentication", json, &big, "")).await;
    assert_eq!(status, 413, "{body}");
    let (status, _, body) = raw(s.addr, &get("/api/2.0/nowhere", "Accept: text/xml\r\n")).await;
    assert_eq!(
        (status, body.as_str()),
        (
            404,
            "<result><status>1</status><statusCode>404</statusCode><error><message>Method not found</message><code>not_found</code></error></result>"
        )
    );
    let (status, head, _) = raw(s.addr, &get("/api/2.0/authentication/setphone", "")).await;
    assert_eq!(status, 405);
    assert!(head.to_ascii_lowercase().contains("allow: post"), "{head}");
    let (status, _, _) = raw(s.addr, &get("/api/2.0/authentication.yaml", "")).await;
    assert_eq!(status, 404);
    let (status, _, body) = raw(s.addr, &get("/api/2.0/capabilities.xml", "")).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<ldapEnabled>false</ldapEnabled><oauthEnabled>false</oauthEnabled>"),
        "{body}"
    );
    let (status, _, body) = raw(s.addr, &get("/healthz", "")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, _) = raw(s.addr, &get("/readyz", "")).await;
    assert_eq!(status, 200);
    let (_, _, body) = raw(s.addr, &get("/metrics", "")).await;
    assert!(
        body.contains("auth_http_requests_total{route=\"authentication\",status=\"401\"} 1"),
        "{body}"
    );
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after_and_busy_store_503() {
    let s = start(TfaMode::None, HttpConfig::default()).await;
    let bad = post("/api/2.0/authentication", None, "userName=ada@example.com&password=x", "");
    for _ in 0..5 {
        assert_eq!(raw(s.addr, &bad).await.0, 401);
    }
    let (status, head, body) = raw(
        s.addr,
        &post(
            "/api/2.0/authentication",
            None,
            "userName=ada@example.com&password=correct+horse",
            "",
        ),
    )
    .await;
    assert_eq!(status, 429);
    assert!(head.to_ascii_lowercase().contains("retry-after: 60"), "{head}");
    assert!(body.contains("login_throttled") && body.contains("Login Fail. Too many attempts"));
    s.w.store.set_down(true);
    let (status, head, body) = raw(s.addr, &get("/readyz", "")).await;
    assert_eq!(status, 503, "{head}{body}");
    s.w.clock.advance(SignedDuration::from_secs(10));
    let (status, head, _) = raw(
        s.addr,
        &post("/api/2.0/authentication", None, "userName=b@example.com&password=x", ""),
    )
    .await;
    assert!(status == 503 && head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
}

#[tokio::test]
async fn typed_client_walks_totp_enrolment() {
    let s = start(TfaMode::App, HttpConfig::default()).await;
    let c = Client::new(format!("http://{}", s.addr)).with_format(Format::Xml);
    let r = c.login("ada@example.com", "correct horse").await.unwrap();
    assert!(r.tfa && r.token.is_none());
    let key = data_encoding::BASE32_NOPAD.decode(r.tfa_key.unwrap().as_bytes()).unwrap();
    let code = auth_core::totp::code_at_step(&key, auth_core::totp::step_at(s.w.service.now()));
    let r = c.verify_code("ada@example.com", "correct horse", &code).await.unwrap();
    let token = r.token.unwrap();
    assert!(r.tfa && r.tfa_key.is_none());
    assert_eq!(c.me(&token).await.unwrap().email, "ada@example.com");
    match c.verify_code("ada@example.com", "correct horse", &code).await {
        Err(ClientError::Api(e)) => {
            assert_eq!((e.status_code, e.code), (401, Some(ErrorCode::InvalidCredentials)))
        }
        other => panic!("{other:?}"),
    }
    assert!(c.logout(&token).await.unwrap());
    assert!(!c.check(&token).await.unwrap());
}

#[tokio::test]
async fn basic_credentials_carry_setphone_and_sms_challenge_shapes() {
    let s = start(TfaMode::Sms, HttpConfig::default()).await;
    let basic =
        format!("Authorization: Basic {}\r\n", base64_encode("ada@example.com:correct horse"));
    let (status, _, body) = raw(s.addr, &post("/api/2.0/authentication", None, "", &basic)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"sms":true}}"#)
    );
    let (status, _, body) = raw(
        s.addr,
        &post(
            "/api/2.0/authentication/setphone.json",
            None,
            "mobilePhone=%2B7+(912)+345-67-89",
            &basic,
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with(
            r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"expires":""#
        ),
        "{body}"
    );
    assert!(body.ends_with(r#"+03:00","sms":true,"phoneNoise":"+7912***6789"}}"#), "{body}");
    // Basic is refused on token-holder endpoints: it is not a token.
    let (status, _, _) = raw(s.addr, &get("/api/2.0/people/@self", &basic)).await;
    assert_eq!(status, 401);
    let code = s.w.last_code_to("79123456789").await.unwrap();
    let (status, head, body) =
        raw(s.addr, &post(&format!("/api/2.0/authentication/{code}.xml"), None, "", &basic)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<sms>true</sms><phoneNoise>+7912***6789</phoneNoise></response></result>"),
        "{body}"
    );
    assert!(head.to_ascii_lowercase().contains("set-cookie: asc_auth_key="));
}

#[tokio::test]
async fn https_portals_get_secure_cookies_and_trusted_proxies_name_the_client() {
    let s = start(
        TfaMode::App,
        HttpConfig {
            trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
            ..HttpConfig::default()
        },
    )
    .await;
    let mut p = (*s.w.service.portal_for_host("x").await.unwrap()).clone();
    p.settings.https = true;
    p.settings.trusted_ips = vec!["198.51.100.0/24".parse().unwrap()];
    s.w.service.admin().update_portal(&p).await.unwrap();
    let form = "userName=ada@example.com&password=correct+horse";
    // From a trusted network (as named by the proxy) no second factor applies, and the cookie is Secure.
    let (status, head, body) = raw(
        s.addr,
        &post(
            "/api/2.0/authentication",
            None,
            form,
            "X-Forwarded-For: 203.0.113.5, 198.51.100.7\r\n",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""token":""#), "{body}");
    assert!(head.contains("SameSite=Lax; Secure"), "{head}");
    // The same header from elsewhere names another client: the second factor applies.
    let (_, _, body) = raw(
        s.addr,
        &post(
            "/api/2.0/authentication",
            None,
            form,
            "X-Forwarded-For: 198.51.100.7, 203.0.113.5\r\n",
        ),
    )
    .await;
    assert!(body.contains(r#""token":null"#) && body.contains(r#""tfa":true"#), "{body}");
}

#[tokio::test]
async fn capabilities_list_the_portals_social_providers() {
    // Which providers a portal offers is the social port's answer (the providers' `portals` lists).
    let fake = Arc::new(auth_core::testkit::FakeSocial::new(&["google", "facebook"], false));
    let w = auth_core::testkit::build_service_social(Default::default(), fake.clone());
    let s = start_world(w, TfaMode::None, HttpConfig::default()).await;
    let (status, _, body) = raw(s.addr, &get("/api/2.0/capabilities", "")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"count":1,"status":0,"statusCode":200,"response":{"ldapEnabled":false,"oauthEnabled":true,"providers":["google","facebook"],"ssoLabel":"","ssoUrl":""}}"#
    );
    // An unlinked identity (here: a proof the provider refuses) fails like any unknown account.
    let (status, _, body) =
        raw(s.addr, &post("/api/2.0/authentication", None, "provider=google&accessToken=abc", ""))
            .await;
    assert_eq!((status, body.contains("invalid_credentials")), (401, true), "{body}");
    // A provider that cannot be asked is a 503 with Retry-After: 5.
    fake.set_down(true);
    let (status, head, body) =
        raw(s.addr, &post("/api/2.0/authentication", None, "provider=google&accessToken=abc", ""))
            .await;
    assert_eq!((status, body.contains("provider_unavailable")), (503, true), "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 5"), "{head}");
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting() {
    let mut s = start(TfaMode::None, HttpConfig::default()).await;
    assert_eq!(raw(s.addr, &get("/healthz", "")).await.0, 200);
    s.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), &mut s.task).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(s.addr).await.is_err(), "the listener is closed");
    let _ = Arc::clone(&s.w.service);
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Issue 11: the endpoint table is the one definition of routing, 405/`Allow`, the metrics and the
/// client's paths. Every row, with the path the client side builds for it, reaches an answer of its
/// own (not 404 or 405), is refused with 405 naming its method under a method no row uses, and is
/// counted under its own name; so adding a row is enough for all four.
#[tokio::test]
async fn every_row_of_the_endpoint_table_is_routed_refused_and_counted() {
    use auth_wire::Endpoint;
    let s = start(TfaMode::None, HttpConfig::default()).await;
    let mut answered = Vec::new();
    for &e in Endpoint::ALL {
        let path = e.path(&["123456"], None);
        let method = e.method().as_str();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: portal.example\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let (status, _, body) = raw(s.addr, &request).await;
        assert!(status != 404 && status != 405, "{method} {path}: {status} {body}");
        answered.push((e, status));
        let request = format!(
            "PATCH {path} HTTP/1.1\r\nHost: portal.example\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let (status, head, _) = raw(s.addr, &request).await;
        assert_eq!(status, 405, "PATCH {path}");
        let allow = head
            .lines()
            .find_map(|l| l.strip_prefix("allow: ").or_else(|| l.strip_prefix("Allow: ")))
            .unwrap_or_else(|| panic!("no Allow for {path}: {head}"));
        assert!(allow.split(", ").any(|m| m == method), "{path}: Allow {allow}");
    }
    let (_, _, metrics) = raw(s.addr, &get("/metrics", "")).await;
    for (e, status) in answered {
        let series =
            format!("auth_http_requests_total{{route=\"{}\",status=\"{status}\"}}", e.name());
        assert!(metrics.contains(&series), "{series} missing from\n{metrics}");
    }
}

/// A scrape hook that counts how often it ran into a gauge, as the server's outbox gauges are
/// refreshed from the store.
struct CountingHook(prometheus_client::metrics::gauge::Gauge);

#[async_trait::async_trait]
impl auth_http::ScrapeHook for CountingHook {
    async fn before_scrape(&self) {
        self.0.inc();
    }
}

/// Serves `router` on a fresh port until the returned sender fires.
async fn serve_router(
    router: Router,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, async move {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

/// Issue 17: an embedder's registry is served with the transport's families added, after its scrape
/// hooks ran; a scraper that asks for OpenMetrics gets it.
#[tokio::test]
async fn issue_17_the_embedders_registry_and_hooks_are_served() {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    let w = build_service();
    let mut registry = auth_http::Registry::default();
    let sends: Counter = Counter::default();
    sends.inc_by(3);
    registry.register("embedder_sends", "Sends of the embedding program", sends);
    let scrapes: Gauge = Gauge::default();
    registry.register("embedder_scrapes", "Scrapes seen by the hook", scrapes.clone());
    let router = Router::new(w.service.clone(), HttpConfig::default())
        .with_registry(registry)
        .with_scrape_hook(Arc::new(CountingHook(scrapes)));
    let (addr, tx, task) = serve_router(router).await;
    let (status, head, body) =
        raw(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    // The transport's families show once they have a series: from the second scrape on.
    for line in ["embedder_sends_total 3\n", "embedder_scrapes 1\n"] {
        assert!(body.contains(line), "{line} missing from\n{body}");
    }
    let (_, head, body) = raw(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(head.to_ascii_lowercase().contains("application/openmetrics-text"), "{head}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    for line in [
        "# TYPE auth_http_requests counter\n",
        "auth_http_requests_total{route=\"metrics\",status=\"200\"} 1\n",
        "# TYPE auth_http_request_seconds histogram\n",
        "embedder_sends_total 3\n",
        "embedder_scrapes 2\n",
    ] {
        assert!(body.contains(line), "{line} missing from\n{body}");
    }
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Issue 17: with the metrics on a listener of their own, the main router does not serve them and
/// the metrics router serves nothing else, while both count into the same families.
#[tokio::test]
async fn issue_17_metrics_can_move_to_a_listener_of_their_own() {
    let w = build_service();
    w.service.admin().ensure_default_portal().await.unwrap();
    let main = Router::new(w.service.clone(), HttpConfig::default());
    let metrics = main.metrics_only();
    let (main_addr, stop_main, main_task) = serve_router(main.without_metrics()).await;
    let (metrics_addr, stop_metrics, metrics_task) = serve_router(metrics).await;

    let (status, _, _) = raw(main_addr, &get("/metrics", "")).await;
    assert_eq!(status, 404, "the main listener no longer serves /metrics");
    let (status, _, _) = raw(main_addr, &get("/api/2.0/capabilities", "")).await;
    assert_eq!(status, 200);
    for path in ["/api/2.0/capabilities", "/login", "/auth/verify"] {
        let (status, _, _) = raw(metrics_addr, &get(path, "")).await;
        assert_eq!(status, 404, "{path} is not served on the metrics listener");
    }
    let (status, _, body) = raw(metrics_addr, &get("/healthz", "")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, body) = raw(metrics_addr, &get("/metrics", "")).await;
    assert_eq!(status, 200);
    for series in [
        "auth_http_requests_total{route=\"capabilities\",status=\"200\"} 1",
        "auth_http_requests_total{route=\"not_found\",status=\"404\"} 4",
        "auth_http_requests_total{route=\"healthz\",status=\"200\"} 1",
    ] {
        assert!(body.contains(series), "{series} missing from\n{body}");
    }
    stop_main.send(()).unwrap();
    stop_metrics.send(()).unwrap();
    main_task.await.unwrap().unwrap();
    metrics_task.await.unwrap().unwrap();
}

/// Issue 15: every front-door route (decision 0006) is answered, refused under a method it does not
/// take, and counted under its own name; forward auth takes every method.
#[tokio::test]
async fn every_front_door_route_is_routed_and_counted() {
    let s = start(TfaMode::None, HttpConfig::default()).await;
    let routes = [
        ("/auth/verify", "auth_verify", None),
        ("/auth/forward", "auth_forward", None),
        ("/login", "login_page", Some("GET")),
        ("/login/app.js", "login_script", Some("GET")),
        ("/login/style.css", "login_style", Some("GET")),
        ("/login/totp", "login_totp", Some("POST")),
        ("/login/oauth/start", "login_oauth_start", Some("GET")),
        ("/login/oauth/callback", "login_oauth_callback", Some("GET")),
    ];
    let mut answered = Vec::new();
    for (path, name, method) in routes {
        let m = method.unwrap_or("PATCH");
        let request = format!(
            "{m} {path} HTTP/1.1\r\nHost: portal.example\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let (status, _, body) = raw(s.addr, &request).await;
        assert!(status != 404 && status != 405, "{m} {path}: {status} {body}");
        answered.push((name, status));
        if let Some(method) = method {
            let request = format!(
                "PATCH {path} HTTP/1.1\r\nHost: portal.example\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            );
            let (status, head, _) = raw(s.addr, &request).await;
            assert_eq!(status, 405, "PATCH {path}");
            assert!(
                head.to_ascii_lowercase()
                    .contains(&format!("allow: {}", method.to_ascii_lowercase())),
                "{head}"
            );
        }
    }
    let (_, _, metrics) = raw(s.addr, &get("/metrics", "")).await;
    for (name, status) in answered {
        let series = format!("auth_http_requests_total{{route=\"{name}\",status=\"{status}\"}}");
        assert!(metrics.contains(&series), "{series} missing from\n{metrics}");
    }
}
