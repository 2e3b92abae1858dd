//! Every flow of the API over real HTTP against the real binary (issue 5): plain login, SMS and TOTP
//! second factors, backup codes, throttles, tokens, formats, request bodies real clients send, portals,
//! and the transport's refusals.
//!
//! Each test prepares its data directory with the admin CLI (portal mode, users) before `serve` starts,
//! so the server never has to notice a change made behind its back.

use std::thread;

use auth_tests::{DataDir, Request, Response, ServerOptions, TestServer};
use serde_json::{Value, json};

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";

/// A server whose default portal has this second factor (plus extra `--set` settings) and one user.
fn server_with(tfa: &str, settings: &[&str]) -> TestServer {
    let data = DataDir::new();
    data.set_portal(Some(tfa), settings).ok();
    data.add_ada(EMAIL, PASSWORD).ok();
    TestServer::start_in(data, ServerOptions::new())
}

fn server(tfa: &str) -> TestServer {
    server_with(tfa, &[])
}

fn creds() -> String {
    format!("userName={EMAIL}&password={}", PASSWORD.replace(' ', "+"))
}

fn post(s: &TestServer, path: &str, form: &str) -> Response {
    s.post_form(path, form)
}

fn response(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!((v["status"].as_i64(), v["statusCode"].as_i64()), (Some(0), Some(200)), "{v}");
    v["response"].clone()
}

fn error_code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
}

fn with_token(req: Request, token: &str) -> Request {
    req.header("Authorization", token)
}

fn totp_code(secret_b32: &str, offset_steps: i64) -> String {
    let secret = data_encoding::BASE32_NOPAD.decode(secret_b32.as_bytes()).expect("base32 tfaKey");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let step = (now / 30) as i64 + offset_steps;
    auth_core::totp::code_at_step(&secret, step as u64)
}

#[test]
fn plain_login_token_check_profile_and_logout() {
    let s = server("none");
    let r = post(&s, "/api/2.0/authentication", &creds());
    let body = r.text();
    assert!(
        body.starts_with(r#"{"count":1,"status":0,"statusCode":200,"response":{"token":""#),
        "{body}"
    );
    let resp = response(&r);
    let token = resp["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    let expires = resp["expires"].as_str().unwrap();
    assert!(
        expires.ends_with('Z') && expires.len() == "2026-01-10T07:46:24.4206897Z".len(),
        "{expires}"
    );
    assert_eq!(resp.as_object().unwrap().len(), 2, "token and expires, nothing else: {resp}");
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with(&format!("asc_auth_key={token}; Expires="))
            && cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );

    let check = s.send(with_token(Request::get("/api/2.0/authentication"), &token));
    assert_eq!(check.text(), r#"{"count":1,"status":0,"statusCode":200,"response":true}"#);
    let me = response(
        &s.send(with_token(Request::get("/api/2.0/people/@self"), &format!("Bearer {token}"))),
    );
    assert_eq!(me["userName"], EMAIL);
    assert_eq!(me["displayName"], "Ada Lovelace");
    assert_eq!(me["isAdmin"], false);
    assert!(
        me.get("mobilePhone").is_none() && me.get("mobilePhoneActivationStatus").is_none(),
        "{me}"
    );
    let xml = s.send(
        Request::get("/api/2.0/people/@self.xml")
            .header("Cookie", &format!("asc_auth_key={token}")),
    );
    assert_eq!(xml.header("content-type"), Some("text/xml; charset=utf-8"));
    assert!(xml.text().starts_with(
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><id>"
    ));

    let out = s.send(with_token(Request::post("/api/2.0/authentication/logout"), &token));
    assert_eq!(out.text(), r#"{"count":1,"status":0,"statusCode":200,"response":true}"#);
    assert!(
        out.header("set-cookie").unwrap().starts_with("asc_auth_key=; Expires=Thu, 01 Jan 1970")
    );
    let check = s.send(with_token(Request::get("/api/2.0/authentication"), &token));
    assert_eq!(check.text(), r#"{"count":1,"status":0,"statusCode":200,"response":false}"#);
    let me = s.send(with_token(Request::get("/api/2.0/people/@self"), &token));
    assert_eq!((me.status, error_code(&me)), (401, "unauthorized".to_owned()));
    let audit = s.run_cli(&["audit", "--json", "--last", "10"]).ok().to_owned();
    assert!(audit.contains("LoginSuccessViaApi") && audit.contains("Logout"), "{audit}");
}

#[test]
fn sms_user_without_a_phone_sets_one_and_logs_in() {
    let s = server("sms");
    let r = post(&s, "/api/2.0/authentication", &creds());
    assert_eq!(
        r.text(),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"sms":true}}"#
    );
    let r = post(
        &s,
        "/api/2.0/authentication/setphone",
        &format!("{}&mobilePhone=%2B7+(912)+345-67-89", creds()),
    );
    let resp = response(&r);
    assert_eq!(resp["token"], Value::Null);
    assert_eq!(
        (resp["sms"].as_bool(), resp["phoneNoise"].as_str()),
        (Some(true), Some("+7912***6789"))
    );
    assert!(resp["expires"].is_string());
    let sms = s.wait_for_sms(1);
    assert_eq!(sms[0].to, "79123456789");
    assert!(sms[0].text.starts_with("Code: "));
    let code = sms[0].code();
    let r = post(&s, &format!("/api/2.0/authentication/{code}"), &creds());
    let resp = response(&r);
    assert!(resp["token"].is_string());
    assert_eq!(
        (resp["sms"].as_bool(), resp["phoneNoise"].as_str()),
        (Some(true), Some("+7912***6789"))
    );
    assert!(r.header("set-cookie").is_some());
    // The code is burnt, and the phone is now activated.
    let again = post(&s, &format!("/api/2.0/authentication/{code}"), &creds());
    assert_eq!((again.status, error_code(&again)), (401, "invalid_credentials".to_owned()));
    let users = s.run_cli(&["user", "list", "--json"]).json();
    assert!(
        users.to_string().contains("7912***6789") || users.to_string().contains("79123456789"),
        "{users}"
    );
    let r = post(
        &s,
        "/api/2.0/authentication/setphone",
        &format!("{}&mobilePhone=79990001122", creds()),
    );
    assert_eq!((r.status, error_code(&r)), (409, "phone_already_activated".to_owned()));
}

#[test]
fn sms_user_with_a_phone_resends_with_cooldown_and_wrong_codes_lock() {
    let s = server_with("sms", &["sms_resend_cooldown_s=1"]);
    post(&s, "/api/2.0/authentication/setphone", &format!("{}&mobilePhone=79123456789", creds()));
    let first = s.wait_for_sms(1)[0].code();
    response(&post(&s, &format!("/api/2.0/authentication/{first}"), &creds()));

    // Step 1 sends a code now that the phone is activated; a second step 1 does not resend.
    let resp = response(&post(&s, "/api/2.0/authentication", &creds()));
    assert_eq!(
        (resp["sms"].as_bool(), resp["phoneNoise"].as_str()),
        (Some(true), Some("+7912***6789"))
    );
    let expires = resp["expires"].as_str().unwrap().to_owned();
    s.wait_for_sms(2);
    let resp = response(&post(&s, "/api/2.0/authentication", &creds()));
    assert_eq!(
        resp["expires"].as_str(),
        Some(expires.as_str()),
        "the newest outstanding code's expiry"
    );

    // sendsms inside the cool-down is refused, after it a new code goes out.
    let r = post(&s, "/api/2.0/authentication/sendsms", &creds());
    assert_eq!((r.status, error_code(&r)), (429, "sms_send_limited".to_owned()));
    assert!(r.header("retry-after").is_some());
    thread::sleep(std::time::Duration::from_millis(1100));
    let resp = response(&post(&s, "/api/2.0/authentication/sendsms", &creds()));
    assert_eq!(resp["phoneNoise"], "+7912***6789");
    let sms = s.wait_for_sms(3);
    assert_eq!(sms.len(), 3, "step 1 did not resend while a code was outstanding");
    let good = sms[2].code();
    let wrong = if good == "111111" { "222222" } else { "111111" };
    for _ in 0..5 {
        let r = post(&s, &format!("/api/2.0/authentication/{wrong}"), &creds());
        assert_eq!((r.status, error_code(&r)), (401, "invalid_credentials".to_owned()));
    }
    let r = post(&s, &format!("/api/2.0/authentication/{good}"), &creds());
    assert_eq!(
        (r.status, error_code(&r)),
        (429, "code_attempts_exceeded".to_owned()),
        "even the right code"
    );
    assert!(r.header("retry-after").is_some());
}

#[test]
fn totp_enrolment_backup_codes_replay_and_reset() {
    let s = server("app");
    let resp = response(&post(&s, "/api/2.0/authentication", &creds()));
    assert_eq!((resp["token"].clone(), resp["tfa"].as_bool()), (Value::Null, Some(true)));
    let key = resp["tfaKey"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32);
    let code = totp_code(&key, 0);
    let resp = response(&post(&s, &format!("/api/2.0/authentication/{code}"), &creds()));
    let token = resp["token"].as_str().unwrap().to_owned();
    assert_eq!(resp["tfa"], true);
    assert!(resp.get("tfaKey").is_none() && resp.get("sms").is_none());

    let replay = post(&s, &format!("/api/2.0/authentication/{code}"), &creds());
    assert_eq!(replay.status, 401, "a used step never validates again");
    let resp = response(&post(&s, "/api/2.0/authentication", &creds()));
    assert!(resp.get("tfaKey").is_none(), "no key once activated: {resp}");

    let codes = s.send(with_token(Request::get("/api/2.0/settings/tfaappcodes"), &token));
    let v = codes.json();
    assert_eq!(v["count"], 5);
    let list = v["response"].as_array().unwrap().clone();
    assert!(list.iter().all(|c| c["isUsed"] == false
        && c["code"].as_str().unwrap().len() == 8
        && c["code"] != "********"));
    let masked = s.send(with_token(Request::get("/api/2.0/settings/tfaappcodes"), &token)).json();
    assert!(
        masked["response"].as_array().unwrap().iter().all(|c| c["code"] == "********"),
        "shown once: {masked}"
    );

    let backup = list[1]["code"].as_str().unwrap().to_lowercase();
    response(&post(&s, &format!("/api/2.0/authentication/{backup}"), &creds()));
    let again = post(&s, &format!("/api/2.0/authentication/{backup}"), &creds());
    assert_eq!(again.status, 401, "a backup code works once");
    let after =
        s.send(with_token(Request::get("/api/2.0/settings/tfaappcodes.xml"), &token)).text();
    assert!(after.contains("<isUsed>true</isUsed>"), "{after}");

    let fresh = s.send(with_token(Request::put("/api/2.0/settings/tfaappnewcodes"), &token)).json();
    assert_eq!(fresh["count"], 5);
    assert!(fresh["response"].as_array().unwrap().iter().all(|c| c["code"] != "********"));

    let reset = s.send(with_token(Request::put("/api/2.0/settings/tfaappnewapp"), &token));
    assert_eq!(reset.text(), r#"{"count":1,"status":0,"statusCode":200,"response":true}"#);
    let resp = response(&post(&s, "/api/2.0/authentication", &creds()));
    let new_key = resp["tfaKey"].as_str().unwrap();
    assert_ne!(new_key, key, "a reset issues a new secret");
    let audit = s.run_cli(&["audit", "--json"]).ok().to_owned();
    for action in [
        "UserConnectedTfaApp",
        "LoginSuccessViaApiTfa",
        "UserDisconnectedTfaApp",
        "LoginFailViaApiTfa",
    ] {
        assert!(audit.contains(action), "{action} in {audit}");
    }
}

#[test]
fn login_throttle_and_disabled_user_look_like_any_failure() {
    let s = server("none");
    let wrong = format!("userName={EMAIL}&password=nope");
    let first = post(&s, "/api/2.0/authentication", &wrong);
    for _ in 0..4 {
        assert_eq!(post(&s, "/api/2.0/authentication", &wrong).status, 401);
    }
    let r = post(&s, "/api/2.0/authentication", &creds());
    assert_eq!((r.status, error_code(&r)), (429, "login_throttled".to_owned()));
    assert_eq!(r.json()["error"]["message"], "Login Fail. Too many attempts");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry), "{retry}");

    s.run_cli(&["user", "add", "--email", "bob@example.com", "--password", "bobs password"]).ok();
    s.run_cli(&["user", "disable", "--email", "bob@example.com"]).ok();
    let disabled =
        post(&s, "/api/2.0/authentication", "userName=bob@example.com&password=bobs+password");
    let unknown =
        post(&s, "/api/2.0/authentication", "userName=nobody@example.com&password=whatever");
    assert_eq!(disabled.status, 401);
    assert_eq!(disabled.body, unknown.body, "disabled and unknown users get the same bytes");
    assert_eq!(disabled.body, first.body, "and so does a wrong password");
    s.run_cli(&["user", "enable", "--email", "bob@example.com"]).ok();
    response(&post(
        &s,
        "/api/2.0/authentication",
        "userName=bob@example.com&password=bobs+password",
    ));
}

#[test]
fn bodies_real_clients_send() {
    let s = server("none");
    let ok = |r: Response| assert!(response(&r)["token"].is_string());
    // JSON, as the official SDKs send it.
    ok(s.post_json("/api/2.0/authentication", &json!({"userName": EMAIL, "password": PASSWORD})));
    // The Android app: explicit nulls, `portal`, an empty `code`.
    ok(s.post_json(
        "/api/2.0/authentication.json",
        &json!({"userName": EMAIL, "password": PASSWORD, "provider": null, "accessToken": null, "codeOauth": null,
                "portal": "portal.example.com", "code": ""}),
    ));
    // The iOS app: provider "email", and keys the server ignores.
    ok(s.post_json(
        "/api/2.0/authentication",
        &json!({"userName": EMAIL, "password": PASSWORD, "provider": "email", "phoneNoise": "", "tfaKey": "", "portal": "x"}),
    ));
    // A form with lower-case names.
    ok(s.post_form(
        "/api/2.0/authentication",
        &format!("username={EMAIL}&password={}", PASSWORD.replace(' ', "%20")),
    ));
    // XML.
    let xml =
        format!("<request><userName>{EMAIL}</userName><password>{PASSWORD}</password></request>");
    ok(s.send(
        Request::post("/api/2.0/authentication").body("text/xml; charset=utf-8", xml.clone()),
    ));
    ok(s.send(Request::post("/api/2.0/authentication").body("application/xml", xml)));
    // Multipart.
    let boundary = "XyZ";
    let mp = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"userName\"\r\n\r\n{EMAIL}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\n{PASSWORD}\r\n--{boundary}--\r\n"
    );
    ok(s.send(
        Request::post("/api/2.0/authentication")
            .body(&format!("multipart/form-data; boundary={boundary}"), mp),
    ));
    // A body without a Content-Type is a form; credentials may also ride in the query string.
    ok(s.send(
        Request::post("/api/2.0/authentication")
            .body("", format!("userName={EMAIL}&password={}", PASSWORD.replace(' ', "+"))),
    ));
    ok(s.send(Request::post(&format!(
        "/api/2.0/authentication?userName={EMAIL}&password=correct%20horse%20battery"
    ))));
    // XML out, negotiated by suffix and by Accept.
    let r = s.send(Request::post("/api/2.0/authentication.xml").body(FORM, creds()));
    assert!(r.text().starts_with(
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token>"
    ));
    let r = s.send(
        Request::post("/api/2.0/authentication").header("Accept", "text/xml").body(FORM, creds()),
    );
    assert_eq!(r.header("content-type"), Some("text/xml; charset=utf-8"));
    let r = s.send(
        Request::post("/api/2.0/authentication")
            .header("Accept", "text/html,application/xml;q=0.9,*/*;q=0.8")
            .body(FORM, creds()),
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "a browser's Accept gets JSON"
    );
}

#[test]
fn portals_by_host_and_transport_refusals() {
    let data = DataDir::new();
    data.run_cli(&["portal", "add", "--host", "a.example.com", "--name", "A"]).ok();
    data.run_cli(&["portal", "add", "--host", "b.example.com", "--name", "B"]).ok();
    data.run_cli(&[
        "user",
        "add",
        "--email",
        EMAIL,
        "--password",
        PASSWORD,
        "--portal",
        "a.example.com",
    ])
    .ok();
    let s = TestServer::start_in(data, ServerOptions::new());
    let login = |host: &str| {
        s.send(Request::post("/api/2.0/authentication").header("Host", host).body(FORM, creds()))
    };
    response(&login("A.example.com:8080"));
    let r = login("b.example.com");
    assert_eq!(
        (r.status, error_code(&r)),
        (401, "invalid_credentials".to_owned()),
        "users belong to one portal"
    );
    let r = login("c.example.com");
    assert_eq!((r.status, error_code(&r)), (404, "portal_not_found".to_owned()));

    let on_a = |req: Request| s.send(req.header("Host", "a.example.com"));
    let r = on_a(Request::get("/api/2.0/nothing"));
    assert_eq!(
        r.text(),
        r#"{"status":1,"statusCode":404,"error":{"message":"Method not found","code":"not_found"}}"#
    );
    let r = on_a(Request::get("/api/2.0/authentication.html"));
    assert_eq!(r.status, 404);
    let r = on_a(Request::get("/api/2.0/authentication/sendsms"));
    assert_eq!(
        (r.status, error_code(&r), r.header("allow")),
        (405, "method_not_allowed".to_owned(), Some("POST"))
    );
    let r = on_a(Request::post("/api/2.0/authentication").body(FORM, vec![b'a'; 70_000]));
    assert_eq!((r.status, error_code(&r)), (413, "payload_too_large".to_owned()));
    let r = on_a(Request::post("/api/2.0/authentication").body("text/plain", "hello"));
    assert_eq!((r.status, error_code(&r)), (415, "unsupported_media_type".to_owned()));
    let r = on_a(Request::post("/api/2.0/authentication").body("application/json", "{not json"));
    assert_eq!((r.status, error_code(&r)), (400, "bad_request".to_owned()));
    let r = on_a(Request::post("//API/2.0//Authentication/").body(FORM, creds()));
    assert_eq!(r.status, 200, "case, doubled and trailing slashes are the same path");
    let caps = on_a(Request::get("/api/2.0/capabilities")).text();
    assert_eq!(
        caps,
        r#"{"count":1,"status":0,"statusCode":200,"response":{"ldapEnabled":false,"oauthEnabled":false,"providers":[],"ssoLabel":"","ssoUrl":""}}"#
    );
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(s.get("/readyz").status, 200);
    assert!(s.get("/metrics").text().contains("auth_http_requests_total"));
}

#[test]
fn two_requests_racing_one_code_win_once() {
    let s = server("sms");
    post(&s, "/api/2.0/authentication/setphone", &format!("{}&mobilePhone=79123456789", creds()));
    let code = s.wait_for_sms(1)[0].code();
    let addr = s.addr();
    let path = format!("/api/2.0/authentication/{code}");
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let req = Request::post(&path).body(FORM, creds());
            thread::spawn(move || req.send(addr).status)
        })
        .collect();
    let mut statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 401]);
}

/// Issue 20, `PUT people/@self/password`: the current password and a fresh token are needed, the
/// policy holds, the new password logs in and the old one no longer does, and every other token of
/// the user ends while the caller's stays.
#[test]
fn changing_ones_own_password() {
    let s = server("none");
    let token = || {
        response(&post(&s, "/api/2.0/authentication", &creds()))["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (mine, other) = (token(), token());
    let change = |token: &str, form: &str| {
        s.send(with_token(Request::put("/api/2.0/people/@self/password"), token).body(FORM, form))
    };
    let r = change(&mine, "currentPassword=wrong+one&password=plenty-long-new-1");
    assert_eq!((r.status, error_code(&r)), (401, "invalid_credentials".to_owned()), "{}", r.text());
    let r = change(&mine, "currentPassword=correct+horse+battery&password=Password123");
    assert_eq!((r.status, error_code(&r)), (400, "weak_password".to_owned()), "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("common"), "{}", r.text());
    let r = change(&mine, "currentPassword=correct+horse+battery&password=short");
    assert_eq!(error_code(&r), "weak_password");
    let r = change(&mine, "password=plenty-long-new-1");
    assert_eq!((r.status, error_code(&r)), (400, "bad_request".to_owned()));
    let r = change(
        "Bearer nonsense",
        "currentPassword=correct+horse+battery&password=plenty-long-new-1",
    );
    assert_eq!(r.status, 401);
    // Nothing refused changed anything: the old password still logs in.
    assert_eq!(post(&s, "/api/2.0/authentication", &creds()).status, 200);

    let r = change(&mine, "currentPassword=correct+horse+battery&password=plenty-long-new-1");
    assert_eq!(response(&r), json!(true));
    let me = |token: &str| s.send(with_token(Request::get("/api/2.0/people/@self"), token)).status;
    assert_eq!(me(&mine), 200, "the caller's token survives its own change");
    assert_eq!(me(&other), 401, "every other token ended");
    assert_eq!(
        post(&s, "/api/2.0/authentication", &creds()).status,
        401,
        "the old password is dead"
    );
    let new = format!("userName={EMAIL}&password=plenty-long-new-1");
    assert_eq!(post(&s, "/api/2.0/authentication", &new).status, 200);
}
