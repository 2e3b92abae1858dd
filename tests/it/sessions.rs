//! The sessions API over real HTTP (issue 17, spec §13): `GET security/activeconnections` lists the
//! caller's tokens with "this one" marked, `PUT …/logout/{id}` ends one (never another user's),
//! `…/logoutallexceptthis` leaves exactly the caller's, `…/logoutall` ends them all; JSON and XML;
//! and "last used" surviving a restart.

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";
const BASE: &str = "/api/2.0/security/activeconnections";

fn server_with(options: ServerOptions) -> TestServer {
    let data = DataDir::new();
    for (email, first) in [("ada@example.com", "Ada"), ("eve@example.com", "Eve")] {
        data.run_cli(&[
            "user",
            "add",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--first-name",
            first,
            "--last-name",
            "Example",
        ])
        .ok();
    }
    TestServer::start_in(data, options)
}

/// Logs `email` in from a client with this `User-Agent`; the token.
fn login(s: &TestServer, email: &str, agent: &str) -> String {
    let form = format!("userName={email}&password={}", PASSWORD.replace(' ', "+"));
    let r = s.send(
        Request::post("/api/2.0/authentication").header("User-Agent", agent).body(FORM, form),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["response"]["token"].as_str().expect("a token").to_owned()
}

fn call(s: &TestServer, method: &str, path: &str, token: &str) -> Response {
    s.send(Request::new(method, path).header("Authorization", token))
}

fn ok(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!((v["status"].as_i64(), v["statusCode"].as_i64()), (Some(0), Some(200)), "{v}");
    v["response"].clone()
}

fn valid(s: &TestServer, token: &str) -> bool {
    ok(&call(s, "GET", "/api/2.0/authentication", token)) == Value::Bool(true)
}

/// The caller's sessions: (loginEvent, items).
fn sessions(s: &TestServer, token: &str) -> (i64, Vec<Value>) {
    let list = ok(&call(s, "GET", BASE, token));
    let items = list["items"].as_array().expect("items").clone();
    (list["loginEvent"].as_i64().expect("a numeric loginEvent"), items)
}

fn by_agent<'a>(items: &'a [Value], agent: &str) -> &'a Value {
    items.iter().find(|i| i["userAgent"] == agent).unwrap_or_else(|| panic!("{agent} in {items:?}"))
}

fn id_of(items: &[Value], agent: &str) -> i64 {
    by_agent(items, agent)["id"].as_i64().expect("a numeric id")
}

#[test]
fn issue_17_list_end_one_end_the_others_end_all() {
    let s = server_with(ServerOptions::new());
    let firefox = login(&s, "ada@example.com", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");
    let safari = login(&s, "ada@example.com", "Mozilla/5.0 (iPhone) Safari/604.1");
    let curl = login(&s, "ada@example.com", "curl/8.5.0");
    let eve = login(&s, "eve@example.com", "Eve's browser");

    // The list: every live token of the caller, this one first and named by loginEvent.
    let (this, items) = sessions(&s, &safari);
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0]["id"].as_i64(), Some(this), "this one first");
    assert_eq!(this, id_of(&items, "Mozilla/5.0 (iPhone) Safari/604.1"));
    for item in &items {
        assert_eq!(item["ip"], "127.0.0.1", "{item}");
        for date in ["date", "lastUsed", "expires"] {
            let d = item[date].as_str().unwrap_or_else(|| panic!("{date} in {item}"));
            assert_eq!(d.len(), "2026-01-10T07:46:24.4206897Z".len(), "{d}");
        }
        // Nothing that could be the token or its hash: the id is a number below 2^53.
        let id = item["id"].as_i64().unwrap();
        assert!((1..1 << 53).contains(&id), "{id}");
        for token in [&firefox, &safari, &curl] {
            assert!(!item.to_string().contains(token.as_str()), "{item}");
        }
    }
    let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    let (eve_this, eve_items) = sessions(&s, &eve);
    assert_eq!(eve_items.len(), 1, "Eve sees only hers");
    assert!(!ids.contains(&eve_this));

    // XML, upstream's shape: one <items> element per session, then <loginEvent>.
    let xml = call(&s, "GET", &format!("{BASE}.xml"), &safari);
    assert_eq!(xml.header("content-type"), Some("text/xml; charset=utf-8"));
    let body = xml.text();
    assert!(body.starts_with("<result><count>1</count><status>0</status><statusCode>200</statusCode><response><items><id>"), "{body}");
    assert_eq!(body.matches("<items>").count(), 3, "{body}");
    assert!(
        body.ends_with(&format!("<loginEvent>{this}</loginEvent></response></result>")),
        "{body}"
    );
    assert!(body.contains("<userAgent>curl/8.5.0</userAgent>"), "{body}");

    // Another user's session: refused exactly like an unknown id, and it survives.
    let firefox_id = id_of(&items, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0");
    let refused = call(&s, "PUT", &format!("{BASE}/logout/{firefox_id}"), &eve);
    let unknown = call(&s, "PUT", &format!("{BASE}/logout/424242"), &eve);
    assert_eq!(ok(&refused), Value::Bool(false));
    assert_eq!(refused.body, unknown.body, "the same bytes for another's and an unknown id");
    assert!(refused.header("set-cookie").is_none());
    assert!(valid(&s, &firefox));
    let bad = call(&s, "PUT", &format!("{BASE}/logout/abc"), &safari);
    assert_eq!((bad.status, bad.json()["error"]["code"].as_str()), (400, Some("bad_request")));
    let anonymous = s.send(Request::get(BASE));
    assert_eq!(anonymous.status, 401);

    // Ending one by id ends that token only.
    let ended = call(&s, "PUT", &format!("{BASE}/logout/{firefox_id}.json"), &safari);
    assert_eq!(ok(&ended), Value::Bool(true));
    assert!(ended.header("set-cookie").is_none(), "another session: the cookie stays");
    assert!(!valid(&s, &firefox));
    assert!(valid(&s, &safari) && valid(&s, &curl) && valid(&s, &eve));
    assert_eq!(ok(&call(&s, "PUT", &format!("{BASE}/logout/{firefox_id}"), &safari)), false);

    // All but this: exactly the caller's token is left; upstream answers the display name.
    let second_firefox = login(&s, "ada@example.com", "Firefox again");
    let r = call(&s, "PUT", &format!("{BASE}/logoutallexceptthis"), &safari);
    assert_eq!(ok(&r), Value::String("Ada Example".into()));
    assert!(valid(&s, &safari));
    assert!(!valid(&s, &curl) && !valid(&s, &second_firefox));
    assert!(valid(&s, &eve), "other users are untouched");
    let (this_again, left) = sessions(&s, &safari);
    assert_eq!((this_again, left.len()), (this, 1));
    let xml = call(&s, "PUT", &format!("{BASE}/logoutallexceptthis.xml"), &safari);
    assert_eq!(
        xml.text(),
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response>Ada Example</response></result>"
    );

    // All: the caller's goes too, with the cookie.
    let phone = login(&s, "ada@example.com", "Phone");
    let r = call(&s, "PUT", &format!("{BASE}/logoutall"), &phone);
    assert_eq!(ok(&r), Value::Bool(true));
    assert!(
        r.header("set-cookie").unwrap().starts_with("asc_auth_key=; Expires=Thu, 01 Jan 1970"),
        "{:?}",
        r.headers
    );
    assert!(!valid(&s, &phone) && !valid(&s, &safari));
    assert_eq!(call(&s, "GET", BASE, &phone).status, 401);
    assert!(valid(&s, &eve));

    // Ending one's own session by id is a logout: the cookie is expired too.
    let own = login(&s, "ada@example.com", "Own");
    let (own_id, _) = sessions(&s, &own);
    let r = call(&s, "PUT", &format!("{BASE}/logout/{own_id}"), &own);
    assert_eq!(ok(&r), Value::Bool(true));
    assert!(r.header("set-cookie").is_some_and(|c| c.starts_with("asc_auth_key=;")));
    assert!(!valid(&s, &own));

    let audit = s.run_cli(&["audit", "--json", "--email", "ada@example.com", "--last", "100"]);
    let actions: Vec<String> = audit
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["action"].as_str().unwrap(), e["code"]))
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "UserLogoutActiveConnection 4035").count(),
        2,
        "one per session ended by id: {actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "UserLogoutActiveConnections 4034").count(),
        3,
        "all but this (twice) and all: {actions:?}"
    );
}

/// "Last used" is written in batches, never by the request, and the last batch reaches the store
/// when the server stops: after a restart the list still shows the use.
#[test]
fn issue_17_last_used_is_shown_and_survives_a_restart() {
    let s = server_with(ServerOptions::new().env("AUTH_SECURITY__LAST_USED_GRANULARITY_SECS", "0"));
    let used = login(&s, "ada@example.com", "used");
    let viewer = login(&s, "ada@example.com", "viewer");
    assert_eq!(ok(&call(&s, "GET", "/api/2.0/people/@self", &used))["userName"], "ada@example.com");
    let (_, items) = sessions(&s, &viewer);
    let item = by_agent(&items, "used");
    let (date, last) = (item["date"].as_str().unwrap(), item["lastUsed"].as_str().unwrap());
    assert!(last > date, "used after its login: {item}");

    let s = s.restart();
    let (_, items) = sessions(&s, &viewer);
    let after = by_agent(&items, "used")["lastUsed"].as_str().unwrap().to_owned();
    assert!(after.as_str() >= last, "the use was written at shutdown: {after} < {last}");
}

/// Issue 18: the server keeps recent session lookups in memory (SQLite: `session_cache.rs`), yet a
/// change made by another process (the admin CLI) ends a session on the very next request: each
/// token is used twice first, so its lookup is cached when the CLI acts.
#[test]
fn issue_18_the_cli_ends_a_cached_session_on_the_next_request() {
    let s = server_with(ServerOptions::new());
    let me = "/api/2.0/people/@self";
    let warm = |token: &str| {
        for _ in 0..3 {
            assert_eq!(call(&s, "GET", me, token).status, 200);
        }
    };

    let token = login(&s, "ada@example.com", "a");
    warm(&token);
    s.run_cli(&["user", "logout-all", "--email", "ada@example.com"]).ok();
    assert_eq!(call(&s, "GET", me, &token).status, 401, "logout-all from the CLI");

    let token = login(&s, "ada@example.com", "b");
    warm(&token);
    s.run_cli(&[
        "user",
        "set-password",
        "--email",
        "ada@example.com",
        "--password",
        "another horse battery",
    ])
    .ok();
    assert_eq!(call(&s, "GET", me, &token).status, 401, "set-password from the CLI");

    let token = login(&s, "eve@example.com", "c");
    warm(&token);
    s.run_cli(&["user", "disable", "--email", "eve@example.com"]).ok();
    assert_eq!(call(&s, "GET", me, &token).status, 401, "disable from the CLI");
}
