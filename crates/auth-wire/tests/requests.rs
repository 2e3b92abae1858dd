//! The request bodies real clients send (API.md §2, upstream-behaviour.md §2.2 and §12) decode to the right
//! credentials, and the client-side encoder produces bodies the server side reads back.

use auth_wire::{BodyFormat, Credentials, DecodeError, Endpoint, Params};

fn credentials(content_type: Option<&str>, body: &str) -> Credentials {
    Params::builder().body(content_type, body.as_bytes()).unwrap().build().credentials()
}

#[test]
fn android_body_with_explicit_nulls_and_portal() {
    let c = credentials(
        Some("application/json; charset=UTF-8"),
        r#"{"userName":"a@b.c","password":"p","provider":null,"accessToken":null,"codeOauth":null,"portal":"x.onlyoffice.com","code":""}"#,
    );
    assert_eq!(c.user_name.as_deref(), Some("a@b.c"));
    assert_eq!(c.password.as_deref(), Some("p"));
    assert_eq!((c.provider, c.access_token, c.code_oauth), (None, None, None));
    assert_eq!(c.code.as_deref(), Some(""));
    assert!(Credentials { provider: None, ..Credentials::default() }.is_password_login());
}

#[test]
fn android_step2_code_comes_from_the_path() {
    let params = Params::builder()
        .path("code", "482913")
        .body(Some("application/json"), br#"{"userName":"a@b.c","password":"p","code":""}"#)
        .unwrap()
        .build();
    assert_eq!(params.credentials().code.as_deref(), Some("482913"));
}

#[test]
fn ios_body_with_email_provider_phone_noise_and_tfa_key() {
    let c = credentials(
        Some("application/json"),
        r#"{"userName":"alice@example.com","password":"s3cret","provider":"email","phoneNoise":"","tfaKey":"","portal":"portal.example"}"#,
    );
    assert_eq!(c.user_name.as_deref(), Some("alice@example.com"));
    assert_eq!(c.password.as_deref(), Some("s3cret"));
    assert_eq!(c.provider.as_deref(), Some("email"));
    assert!(c.is_password_login());
    assert_eq!(c.mobile_phone, None);
}

#[test]
fn social_login_body() {
    let c = credentials(
        Some("application/json"),
        r#"{"provider":"google","accessToken":"ya29.a0AfH6","codeOAuth":"4/0AY0e","userName":"","password":""}"#,
    );
    assert!(!c.is_password_login());
    assert_eq!(c.access_token.as_deref(), Some("ya29.a0AfH6"));
    assert_eq!(c.code_oauth.as_deref(), Some("4/0AY0e"));
}

#[test]
fn form_body_with_lower_case_username() {
    // The public curl example of the upstream docs.
    let c = credentials(
        Some("application/x-www-form-urlencoded"),
        "username=alice%40example.com&password=s3cr%2Bt+x",
    );
    assert_eq!(c.user_name.as_deref(), Some("alice@example.com"));
    assert_eq!(c.password.as_deref(), Some("s3cr+t x"));
    // Upstream §12: a form body on `authentication.json`.
    let c = credentials(
        Some("application/x-www-form-urlencoded"),
        "userName=alice%40example.com&password=s3cret",
    );
    assert_eq!(c.user_name.as_deref(), Some("alice@example.com"));
}

#[test]
fn form_body_without_content_type() {
    let c = credentials(None, "userName=a&password=b");
    assert_eq!((c.user_name.as_deref(), c.password.as_deref()), (Some("a"), Some("b")));
}

#[test]
fn setphone_with_basic_header_like_the_sdk() {
    let params = Params::builder()
        .body(Some("application/json"), br#"{"mobilePhone":"+7 (912) 345-67-89"}"#)
        .unwrap()
        .build();
    // base64("alice@example.com:s3cret")
    let c = params.credentials().with_basic(Some("Basic YWxpY2VAZXhhbXBsZS5jb206czNjcmV0"));
    assert_eq!(c.user_name.as_deref(), Some("alice@example.com"));
    assert_eq!(c.password.as_deref(), Some("s3cret"));
    assert_eq!(c.mobile_phone.as_deref(), Some("+7 (912) 345-67-89"));
}

#[test]
fn multipart_and_xml_bodies() {
    let multipart = "--b0undary\r\nContent-Disposition: form-data; name=\"UserName\"\r\n\r\na@b.c\r\n\
                     --b0undary\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n--b0undary--\r\n";
    let c = credentials(Some("multipart/form-data; boundary=b0undary"), multipart);
    assert_eq!((c.user_name.as_deref(), c.password.as_deref()), (Some("a@b.c"), Some("p")));
    for ct in ["text/xml; charset=utf-8", "application/xml"] {
        let c = credentials(
            Some(ct),
            "<request><userName>a@b.c</userName><password>p&lt;q</password></request>",
        );
        assert_eq!((c.user_name.as_deref(), c.password.as_deref()), (Some("a@b.c"), Some("p<q")));
    }
}

#[test]
fn refusals_map_to_statuses() {
    let decode =
        |ct: Option<&str>, body: &[u8]| Params::builder().limit(16).body(ct, body).map(|_| ());
    assert_eq!(decode(Some("application/json"), b"[]").unwrap_err().status_code(), 400);
    assert_eq!(decode(Some("text/json"), b"{}").unwrap_err().status_code(), 415);
    assert_eq!(decode(None, &[b'a'; 17]), Err(DecodeError::TooLarge { limit: 16 }));
    assert_eq!(decode(None, &[b'a'; 17]).unwrap_err().status_code(), 413);
}

#[test]
fn client_bodies_round_trip_through_the_server_decoder() {
    let sent = Credentials {
        user_name: Some("alice@example.com".into()),
        password: Some("p/&=\"ü".into()),
        provider: Some("email".into()),
        mobile_phone: Some("+7 912".into()),
        ..Credentials::default()
    };
    for format in [BodyFormat::Json, BodyFormat::Form] {
        let (content_type, body) = sent.encode(format);
        let got = Params::builder().body(Some(content_type), &body).unwrap().build().credentials();
        assert_eq!(got, sent, "{format:?}");
    }
    assert_eq!(Endpoint::Code.path(&["482913"], None), "/api/2.0/authentication/482913");
    assert_eq!(
        Endpoint::Authenticate.path(&[], Some(auth_wire::Format::Json)),
        "/api/2.0/authentication.json"
    );
}
