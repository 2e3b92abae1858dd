//! Forward auth (spec §10, issue 15) behind a real nginx running `docs/proxy/nginx-site.conf`, and
//! `/auth/verify` / `/auth/forward` spoken to directly: identity headers, the sign-in redirect with
//! `return`, forged original URLs from a non-proxy, and no open redirect.

use auth_tests::nginx::{Nginx, Upstream};
use auth_tests::{Request, Response, ServerOptions, TestServer, send_from};
use serde_json::json;

/// The shipped site file, pointed at this test's server and upstream.
fn site(auth: &TestServer, upstream: &Upstream) -> String {
    let site = include_str!("../../docs/proxy/nginx-site.conf");
    let replaced = site
        .replace("server 127.0.0.1:8080;", &format!("server {};", auth.addr()))
        .replace("server 127.0.0.1:9000;", &format!("server {};", upstream.addr()))
        .replace("listen 80;", "listen {listen};");
    assert_ne!(replaced, site, "the site file's addresses changed; update this test");
    replaced
}

/// A server that trusts only 127.0.0.1 (where nginx connects from) as a proxy.
fn server() -> TestServer {
    TestServer::start_with(ServerOptions::new().env("AUTH_HTTP__TRUSTED_PROXIES", "127.0.0.1/32"))
}

fn login_cookie(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("asc_auth_key="))
        .unwrap_or_else(|| panic!("no token cookie: {:?}", r.headers));
    cookie.split(';').next().unwrap().to_owned()
}

#[test]
fn nginx_sends_browsers_to_the_sign_in_page_and_signed_in_users_through() {
    let auth = server();
    let upstream = Upstream::start();
    let Some(nginx) = Nginx::start(&site(&auth, &upstream)) else { return };
    let host = nginx.addr().to_string();
    let admin = auth.admin().unwrap();

    // A browser without a cookie: to the sign-in page on the same origin, with where it was going.
    let page = nginx.send(
        Request::get("/docs/a?b=1").header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    );
    assert_eq!(page.status, 302, "{}\n{}", page.text(), nginx.error_log());
    let want = format!(
        "http://{host}/login?return=http%3A%2F%2F{}%2Fdocs%2Fa%3Fb%3D1",
        host.replace(':', "%3A")
    );
    assert_eq!(page.header("location"), Some(want.as_str()));

    // An API client: the 401, not a page.
    let api = nginx.send(Request::get("/docs/a").header("Accept", "application/json"));
    assert_eq!(api.status, 401, "{}", api.text());

    // Signed in through the same nginx: the application sees who it is, from the check alone.
    let login = nginx.send(Request::post("/api/2.0/authentication").body(
        "application/json",
        json!({"userName": admin.email, "password": admin.password}).to_string(),
    ));
    let cookie = login_cookie(&login);
    let through = nginx.send(
        Request::get("/docs/a")
            .header("Cookie", &cookie)
            .header("X-Auth-User-Email", "forged@evil.example"),
    );
    assert_eq!(through.status, 200, "{}\n{}", through.text(), nginx.error_log());
    let seen = through.text().to_ascii_lowercase();
    assert!(
        seen.contains(&format!("x-auth-user-email: {}", admin.email.to_ascii_lowercase())),
        "{seen}"
    );
    assert!(seen.contains("x-auth-is-admin: true"), "{seen}");
    assert!(
        !seen.contains("forged@evil.example"),
        "a client's own identity header got through: {seen}"
    );

    // The sign-in page itself is served through the proxy without a check.
    let page = nginx
        .send(Request::get("/login?return=https://evil.example/").header("Accept", "text/html"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("id=\"app\""), "{}", page.text());
    assert!(!page.text().contains("evil.example"), "an open redirect: {}", page.text());

    // A logged-out token is refused at the door on the next request.
    let logout =
        nginx.send(Request::post("/api/2.0/authentication/logout").header("Cookie", &cookie));
    assert_eq!(logout.status, 200, "{}", logout.text());
    let after = nginx.send(Request::get("/docs/a").header("Cookie", &cookie));
    assert_eq!(after.status, 401);
}

#[test]
fn verify_answers_identity_headers_and_sign_in_links() {
    let auth = server();
    let admin = auth.admin().unwrap();
    let login = auth.post_json(
        "/api/2.0/authentication",
        &json!({"userName": admin.email, "password": admin.password}),
    );
    let token = login.json()["response"]["token"].as_str().unwrap().to_owned();

    for path in ["/auth/verify", "/auth/forward"] {
        // Any method: proxies check the original request under its own.
        for method in ["GET", "POST", "DELETE"] {
            let r = auth.send(Request::new(method, path).header("Authorization", &token));
            assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
            assert_eq!(r.header("x-auth-user-email"), Some(admin.email.as_str()));
            assert_eq!(r.header("x-auth-is-admin"), Some("true"));
            assert!(r.header("x-auth-user-id").is_some_and(|id| id.len() == 36));
            assert_eq!(r.header("x-auth-user-name"), Some("Administrator"));
            assert!(r.body.is_empty());
        }
    }

    let original = format!("http://{}/app?x=1", auth.addr());
    let encoded =
        format!("http%3A%2F%2F{}%2Fapp%3Fx%3D1", auth.addr().to_string().replace(':', "%3A"));
    // From the trusted proxy: the original URL makes the way back.
    let r = auth.send(Request::get("/auth/verify").header("X-Original-URL", &original));
    assert_eq!(r.status, 401);
    let want = format!("http://{}/login?return={encoded}", auth.addr());
    assert_eq!(r.header("location"), Some(want.as_str()));
    // Traefik's and Caddy's headers; a browser gets the 302 from /auth/forward, an API client the 401.
    let traefik = |accept: &str| {
        Request::get("/auth/forward")
            .header("Accept", accept)
            .header("X-Forwarded-Proto", "http")
            .header("X-Forwarded-Host", &auth.addr().to_string())
            .header("X-Forwarded-Uri", "/app?x=1")
    };
    let r = auth.send(traefik("text/html"));
    assert_eq!((r.status, r.header("location")), (302, Some(want.as_str())));
    let r = auth.send(traefik("application/json"));
    assert_eq!((r.status, r.header("location")), (401, Some(want.as_str())));
    assert_eq!(r.json()["error"]["code"], "unauthorized");

    // Forged by a client that is not a proxy (127.0.0.2): ignored, so the link has no way back.
    let forged = Request::get("/auth/verify").header("X-Original-URL", &original);
    let r = send_from("127.0.0.2", auth.addr(), &forged);
    assert_eq!((r.status, r.header("location")), (401, Some("/login")));

    // An original URL on someone else's host is never a way back, even from the proxy.
    for evil in ["https://evil.example/", "https://portal.example@evil.example/", "//evil.example/"]
    {
        let r = auth.send(
            Request::get("/auth/verify")
                .header("Host", "portal.example")
                .header("X-Original-URL", evil),
        );
        assert_eq!((r.status, r.header("location")), (401, Some("/login")), "{evil}");
    }

    // A wrong token is the same as none.
    let r = auth.send(Request::get("/auth/verify").header("Cookie", "asc_auth_key=nope"));
    assert_eq!(r.status, 401);
    let metrics = auth.get("/metrics").text();
    assert!(metrics.contains("route=\"auth_verify\",status=\"200\""), "{metrics}");
    assert!(
        metrics.contains("route=\"auth_forward\",status=\"302\"")
            || metrics.contains("route=\"auth_forward\",status=\"other\""),
        "{metrics}"
    );
}
