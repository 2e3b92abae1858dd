//! Golden tests: every JSON and XML sample of API.md §3–§4 and §9 (and upstream's §12 samples), byte for byte.
//!
//! Each case also decodes its own bytes back, so the client side is checked against the same samples.

use auth_wire::{
    ActiveConnections, ApiDate, ApiError, BackupCode, Capabilities, ClientError, Connection,
    Envelope, ErrorCode, ErrorEnvelope, Format, Payload, Profile, ProfilePhone, TokenResponse,
};

/// Asserts both encodings of `envelope` byte for byte, and that both decode back to it.
fn check(envelope: Envelope, json: &str, xml: &str) {
    assert_eq!(String::from_utf8(envelope.to_json()).unwrap(), json);
    assert_eq!(String::from_utf8(envelope.to_xml()).unwrap(), xml);
    let kind = envelope.payload.kind();
    assert_eq!(
        Envelope::decode(Format::Json, json.as_bytes(), kind),
        Ok(envelope.clone()),
        "{json}"
    );
    assert_eq!(Envelope::decode(Format::Xml, xml.as_bytes(), kind), Ok(envelope), "{xml}");
}

/// Asserts both encodings of an error envelope, and that both decode to the matching `ApiError`.
fn check_error(envelope: ErrorEnvelope, json: &str, xml: &str) {
    assert_eq!(String::from_utf8(envelope.to_json()).unwrap(), json);
    assert_eq!(String::from_utf8(envelope.to_xml()).unwrap(), xml);
    let want = Err(ClientError::Api(ApiError::from(envelope)));
    assert_eq!(auth_wire::decode_response::<TokenResponse>(Format::Json, json.as_bytes()), want);
    assert_eq!(auth_wire::decode_response::<TokenResponse>(Format::Xml, xml.as_bytes()), want);
}

fn sms_expiry() -> ApiDate {
    ApiDate::new(1_768_031_184, 420_689_700, 0).unwrap()
}

fn noise() -> Option<String> {
    Some("+7912***6789".to_owned())
}

#[test]
fn spec_section_3_sms_challenge() {
    check(
        Envelope::ok(200, TokenResponse::sms_challenge(Some(sms_expiry()), noise())),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"expires":"2026-01-10T07:46:24.4206897Z","sms":true,"phoneNoise":"+7912***6789"}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token /><expires>2026-01-10T07:46:24.4206897Z</expires><sms>true</sms><phoneNoise>+7912***6789</phoneNoise></response></result>",
    );
}

#[test]
fn spec_section_3_error() {
    check_error(
        ErrorEnvelope::new(ErrorCode::InvalidCredentials),
        r#"{"status":1,"statusCode":401,"error":{"message":"User authentication failed","code":"invalid_credentials"}}"#,
        "<result><status>1</status><statusCode>401</statusCode><error><message>User authentication failed</message><code>invalid_credentials</code></error></result>",
    );
}

/// Every error envelope, byte for byte, as literal text: a change to a code's string, status or
/// message shows here as a failing sample, not as the encoder agreeing with itself.
#[test]
fn every_error_code() {
    let samples = [
        (
            ErrorCode::InvalidCredentials,
            r#"{"status":1,"statusCode":401,"error":{"message":"User authentication failed","code":"invalid_credentials"}}"#,
            "<result><status>1</status><statusCode>401</statusCode><error><message>User authentication failed</message><code>invalid_credentials</code></error></result>",
        ),
        (
            ErrorCode::LoginThrottled,
            r#"{"status":1,"statusCode":429,"error":{"message":"Login Fail. Too many attempts","code":"login_throttled"}}"#,
            "<result><status>1</status><statusCode>429</statusCode><error><message>Login Fail. Too many attempts</message><code>login_throttled</code></error></result>",
        ),
        (
            ErrorCode::SmsSendLimited,
            r#"{"status":1,"statusCode":429,"error":{"message":"You have sent too many text messages. Please try again later.","code":"sms_send_limited"}}"#,
            "<result><status>1</status><statusCode>429</statusCode><error><message>You have sent too many text messages. Please try again later.</message><code>sms_send_limited</code></error></result>",
        ),
        (
            ErrorCode::CodeAttemptsExceeded,
            r#"{"status":1,"statusCode":429,"error":{"message":"Login Fail. Too many attempts","code":"code_attempts_exceeded"}}"#,
            "<result><status>1</status><statusCode>429</statusCode><error><message>Login Fail. Too many attempts</message><code>code_attempts_exceeded</code></error></result>",
        ),
        (
            ErrorCode::SecondFactorLocked,
            r#"{"status":1,"statusCode":429,"error":{"message":"Too many attempts. Ask an administrator to reset two-factor authentication.","code":"second_factor_locked"}}"#,
            "<result><status>1</status><statusCode>429</statusCode><error><message>Too many attempts. Ask an administrator to reset two-factor authentication.</message><code>second_factor_locked</code></error></result>",
        ),
        (
            ErrorCode::BadRequest,
            r#"{"status":1,"statusCode":400,"error":{"message":"Bad request","code":"bad_request"}}"#,
            "<result><status>1</status><statusCode>400</statusCode><error><message>Bad request</message><code>bad_request</code></error></result>",
        ),
        (
            ErrorCode::PhoneRequired,
            r#"{"status":1,"statusCode":400,"error":{"message":"Enter mobile phone number","code":"phone_required"}}"#,
            "<result><status>1</status><statusCode>400</statusCode><error><message>Enter mobile phone number</message><code>phone_required</code></error></result>",
        ),
        (
            ErrorCode::InvalidPhone,
            r#"{"status":1,"statusCode":400,"error":{"message":"Incorrect phone number","code":"invalid_phone"}}"#,
            "<result><status>1</status><statusCode>400</statusCode><error><message>Incorrect phone number</message><code>invalid_phone</code></error></result>",
        ),
        (
            ErrorCode::PhoneAlreadyActivated,
            r#"{"status":1,"statusCode":409,"error":{"message":"To change the number, you need to delete your current phone number","code":"phone_already_activated"}}"#,
            "<result><status>1</status><statusCode>409</statusCode><error><message>To change the number, you need to delete your current phone number</message><code>phone_already_activated</code></error></result>",
        ),
        (
            ErrorCode::Unauthorized,
            r#"{"status":1,"statusCode":401,"error":{"message":"Unauthorized","code":"unauthorized"}}"#,
            "<result><status>1</status><statusCode>401</statusCode><error><message>Unauthorized</message><code>unauthorized</code></error></result>",
        ),
        (
            ErrorCode::TfaNotAvailable,
            r#"{"status":1,"statusCode":403,"error":{"message":"Two-factor authentication app is not available","code":"tfa_not_available"}}"#,
            "<result><status>1</status><statusCode>403</statusCode><error><message>Two-factor authentication app is not available</message><code>tfa_not_available</code></error></result>",
        ),
        (
            ErrorCode::Forbidden,
            r#"{"status":1,"statusCode":403,"error":{"message":"Access denied","code":"forbidden"}}"#,
            "<result><status>1</status><statusCode>403</statusCode><error><message>Access denied</message><code>forbidden</code></error></result>",
        ),
        (
            ErrorCode::NotFound,
            r#"{"status":1,"statusCode":404,"error":{"message":"Method not found","code":"not_found"}}"#,
            "<result><status>1</status><statusCode>404</statusCode><error><message>Method not found</message><code>not_found</code></error></result>",
        ),
        (
            ErrorCode::MethodNotAllowed,
            r#"{"status":1,"statusCode":405,"error":{"message":"Method not found","code":"method_not_allowed"}}"#,
            "<result><status>1</status><statusCode>405</statusCode><error><message>Method not found</message><code>method_not_allowed</code></error></result>",
        ),
        (
            ErrorCode::PortalNotFound,
            r#"{"status":1,"statusCode":404,"error":{"message":"Portal not found","code":"portal_not_found"}}"#,
            "<result><status>1</status><statusCode>404</statusCode><error><message>Portal not found</message><code>portal_not_found</code></error></result>",
        ),
        (
            ErrorCode::RequestTimeout,
            r#"{"status":1,"statusCode":408,"error":{"message":"Request body not received in time","code":"request_timeout"}}"#,
            "<result><status>1</status><statusCode>408</statusCode><error><message>Request body not received in time</message><code>request_timeout</code></error></result>",
        ),
        (
            ErrorCode::PayloadTooLarge,
            r#"{"status":1,"statusCode":413,"error":{"message":"Request body too large","code":"payload_too_large"}}"#,
            "<result><status>1</status><statusCode>413</statusCode><error><message>Request body too large</message><code>payload_too_large</code></error></result>",
        ),
        (
            ErrorCode::UnsupportedMediaType,
            r#"{"status":1,"statusCode":415,"error":{"message":"Unsupported content type","code":"unsupported_media_type"}}"#,
            "<result><status>1</status><statusCode>415</statusCode><error><message>Unsupported content type</message><code>unsupported_media_type</code></error></result>",
        ),
        (
            ErrorCode::Busy,
            r#"{"status":1,"statusCode":503,"error":{"message":"Server is busy","code":"busy"}}"#,
            "<result><status>1</status><statusCode>503</statusCode><error><message>Server is busy</message><code>busy</code></error></result>",
        ),
        (
            ErrorCode::Internal,
            r#"{"status":1,"statusCode":500,"error":{"message":"Internal error","code":"internal"}}"#,
            "<result><status>1</status><statusCode>500</statusCode><error><message>Internal error</message><code>internal</code></error></result>",
        ),
        (
            ErrorCode::ReauthenticationRequired,
            r#"{"status":1,"statusCode":401,"error":{"message":"Sign in again to change two-factor settings","code":"reauthentication_required"}}"#,
            "<result><status>1</status><statusCode>401</statusCode><error><message>Sign in again to change two-factor settings</message><code>reauthentication_required</code></error></result>",
        ),
        (
            ErrorCode::ProviderUnavailable,
            r#"{"status":1,"statusCode":503,"error":{"message":"Authentication provider is unavailable","code":"provider_unavailable"}}"#,
            "<result><status>1</status><statusCode>503</statusCode><error><message>Authentication provider is unavailable</message><code>provider_unavailable</code></error></result>",
        ),
        (
            ErrorCode::AlreadyLinked,
            r#"{"status":1,"statusCode":409,"error":{"message":"This account is already linked to another user","code":"already_linked"}}"#,
            "<result><status>1</status><statusCode>409</statusCode><error><message>This account is already linked to another user</message><code>already_linked</code></error></result>",
        ),
        (
            ErrorCode::WeakPassword,
            r#"{"status":1,"statusCode":400,"error":{"message":"The password does not meet the password policy","code":"weak_password"}}"#,
            "<result><status>1</status><statusCode>400</statusCode><error><message>The password does not meet the password policy</message><code>weak_password</code></error></result>",
        ),
        (
            ErrorCode::InvalidResetKey,
            r#"{"status":1,"statusCode":400,"error":{"message":"The link is no longer valid (it was used, it expired, or the password changed since)","code":"invalid_reset_key"}}"#,
            "<result><status>1</status><statusCode>400</statusCode><error><message>The link is no longer valid (it was used, it expired, or the password changed since)</message><code>invalid_reset_key</code></error></result>",
        ),
        (
            ErrorCode::ResetLimited,
            r#"{"status":1,"statusCode":429,"error":{"message":"Too many password reset requests. Please try again later.","code":"reset_limited"}}"#,
            "<result><status>1</status><statusCode>429</statusCode><error><message>Too many password reset requests. Please try again later.</message><code>reset_limited</code></error></result>",
        ),
    ];
    assert_eq!(samples.len(), ErrorCode::ALL.len(), "a sample for every code");
    for (code, json, xml) in samples {
        check_error(ErrorEnvelope::new(code), json, xml);
    }
    check_error(
        ErrorEnvelope::with_message(ErrorCode::BadRequest, "userName empty"),
        r#"{"status":1,"statusCode":400,"error":{"message":"userName empty","code":"bad_request"}}"#,
        "<result><status>1</status><statusCode>400</statusCode><error><message>userName empty</message><code>bad_request</code></error></result>",
    );
}

#[test]
fn spec_table_statuses_and_messages() {
    let table = [
        (ErrorCode::InvalidCredentials, 401, "User authentication failed"),
        (ErrorCode::LoginThrottled, 429, "Login Fail. Too many attempts"),
        (
            ErrorCode::SmsSendLimited,
            429,
            "You have sent too many text messages. Please try again later.",
        ),
        (ErrorCode::CodeAttemptsExceeded, 429, "Login Fail. Too many attempts"),
        (
            ErrorCode::SecondFactorLocked,
            429,
            "Too many attempts. Ask an administrator to reset two-factor authentication.",
        ),
        (ErrorCode::PhoneRequired, 400, "Enter mobile phone number"),
        (ErrorCode::InvalidPhone, 400, "Incorrect phone number"),
        (
            ErrorCode::PhoneAlreadyActivated,
            409,
            "To change the number, you need to delete your current phone number",
        ),
        (ErrorCode::Unauthorized, 401, "Unauthorized"),
        (ErrorCode::TfaNotAvailable, 403, "Two-factor authentication app is not available"),
        (ErrorCode::Forbidden, 403, "Access denied"),
        (ErrorCode::NotFound, 404, "Method not found"),
        (ErrorCode::MethodNotAllowed, 405, "Method not found"),
        (ErrorCode::PortalNotFound, 404, "Portal not found"),
        (ErrorCode::Busy, 503, "Server is busy"),
        (ErrorCode::Internal, 500, "Internal error"),
    ];
    for (code, status, message) in table {
        assert_eq!((code.status_code(), code.default_message()), (status, message), "{code}");
    }
    assert_eq!(ErrorCode::RequestTimeout.status_code(), 408);
    assert_eq!(ErrorCode::PayloadTooLarge.status_code(), 413);
    assert_eq!(ErrorCode::UnsupportedMediaType.status_code(), 415);
}

#[test]
fn step1_sms_without_activated_phone() {
    check(
        Envelope::ok(200, TokenResponse::sms_challenge(None, None)),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"sms":true}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token /><sms>true</sms></response></result>",
    );
}

#[test]
fn step1_tfa_enrolment_and_tfa_alone() {
    check(
        Envelope::ok(200, TokenResponse::tfa_challenge(Some("KV5E2MDFKZUEOYSF".into()))),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"tfa":true,"tfaKey":"KV5E2MDFKZUEOYSF"}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token /><tfa>true</tfa><tfaKey>KV5E2MDFKZUEOYSF</tfaKey></response></result>",
    );
    check(
        Envelope::ok(200, TokenResponse::tfa_challenge(None)),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":null,"tfa":true}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token /><tfa>true</tfa></response></result>",
    );
}

#[test]
fn step1_token_issued_in_portal_offset() {
    let expires = sms_expiry().with_offset(3 * 3600).unwrap();
    check(
        Envelope::ok(200, TokenResponse::issued("sFq3_-x", expires)),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":"sFq3_-x","expires":"2026-01-10T10:46:24.4206897+03:00"}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token>sFq3_-x</token><expires>2026-01-10T10:46:24.4206897+03:00</expires></response></result>",
    );
    let west = sms_expiry().with_offset(-5 * 3600).unwrap();
    check(
        Envelope::ok(200, TokenResponse::issued("t", west)),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":"t","expires":"2026-01-10T02:46:24.4206897-05:00"}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token>t</token><expires>2026-01-10T02:46:24.4206897-05:00</expires></response></result>",
    );
}

#[test]
fn step2_success_with_sms_and_with_tfa() {
    let expires = ApiDate::new(1_799_566_621, 123_456_700, 0).unwrap();
    let sms = TokenResponse {
        sms: true,
        phone_noise: noise(),
        ..TokenResponse::issued("<token>", expires)
    };
    // Upstream's §12 sample, with its 201; ours answers 200 but the bytes are otherwise the same.
    check(
        Envelope::ok(201, sms.clone()),
        r#"{"count":1,"status":0,"statusCode":201,"response":{"token":"<token>","expires":"2027-01-10T07:37:01.1234567Z","sms":true,"phoneNoise":"+7912***6789"}}"#,
        "<result><count>1</count><status>0</status><statusCode>201</statusCode><response><token>&lt;token&gt;</token><expires>2027-01-10T07:37:01.1234567Z</expires><sms>true</sms><phoneNoise>+7912***6789</phoneNoise></response></result>",
    );
    check(
        Envelope::ok(200, sms),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":"<token>","expires":"2027-01-10T07:37:01.1234567Z","sms":true,"phoneNoise":"+7912***6789"}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token>&lt;token&gt;</token><expires>2027-01-10T07:37:01.1234567Z</expires><sms>true</sms><phoneNoise>+7912***6789</phoneNoise></response></result>",
    );
    let tfa = TokenResponse { tfa: true, ..TokenResponse::issued("abc", expires) };
    check(
        Envelope::ok(200, tfa),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":"abc","expires":"2027-01-10T07:37:01.1234567Z","tfa":true}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token>abc</token><expires>2027-01-10T07:37:01.1234567Z</expires><tfa>true</tfa></response></result>",
    );
}

#[test]
fn upstream_section_12_tfa_enrolment_with_201() {
    check(
        Envelope::ok(201, TokenResponse::tfa_challenge(Some("KV5E2MDFKZUEOYSF".into()))),
        r#"{"count":1,"status":0,"statusCode":201,"response":{"token":null,"tfa":true,"tfaKey":"KV5E2MDFKZUEOYSF"}}"#,
        "<result><count>1</count><status>0</status><statusCode>201</statusCode><response><token /><tfa>true</tfa><tfaKey>KV5E2MDFKZUEOYSF</tfaKey></response></result>",
    );
}

#[test]
fn booleans() {
    check(
        Envelope::ok(200, true),
        r#"{"count":1,"status":0,"statusCode":200,"response":true}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response>true</response></result>",
    );
    check(
        Envelope::ok(200, false),
        r#"{"count":1,"status":0,"statusCode":200,"response":false}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response>false</response></result>",
    );
}

#[test]
fn backup_codes_list() {
    let codes = vec![
        BackupCode { is_used: false, code: "K7M2QX9P".into() },
        BackupCode { is_used: true, code: "4HTR8WZN".into() },
    ];
    check(
        Envelope::ok(200, codes),
        r#"{"count":2,"status":0,"statusCode":200,"response":[{"isUsed":false,"code":"K7M2QX9P"},{"isUsed":true,"code":"4HTR8WZN"}]}"#,
        "<result><count>2</count><status>0</status><statusCode>200</statusCode><response><isUsed>false</isUsed><code>K7M2QX9P</code></response><response><isUsed>true</isUsed><code>4HTR8WZN</code></response></result>",
    );
    let masked: Vec<BackupCode> = (0..5).map(|i| BackupCode::masked(i == 0)).collect();
    let item = |used: bool| format!(r#"{{"isUsed":{used},"code":"********"}}"#);
    let xml_item =
        |used: bool| format!("<response><isUsed>{used}</isUsed><code>********</code></response>");
    check(
        Envelope::ok(200, masked),
        &format!(
            r#"{{"count":5,"status":0,"statusCode":200,"response":[{},{},{},{},{}]}}"#,
            item(true),
            item(false),
            item(false),
            item(false),
            item(false)
        ),
        &format!(
            "<result><count>5</count><status>0</status><statusCode>200</statusCode>{}{}{}{}{}</result>",
            xml_item(true),
            xml_item(false),
            xml_item(false),
            xml_item(false),
            xml_item(false)
        ),
    );
    check(
        Envelope::ok(200, Vec::<BackupCode>::new()),
        r#"{"status":0,"statusCode":200,"response":[]}"#,
        "<result><status>0</status><statusCode>200</statusCode></result>",
    );
}

fn profile(phone: Option<ProfilePhone>) -> Profile {
    Profile {
        id: "0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60".into(),
        user_name: "alice@example.com".into(),
        first_name: "Alice".into(),
        last_name: "Иванова".into(),
        display_name: "Alice Иванова".into(),
        email: "alice@example.com".into(),
        phone,
        is_admin: false,
    }
}

#[test]
fn profile_with_and_without_phone() {
    check(
        Envelope::ok(
            200,
            profile(Some(ProfilePhone { noise: "+7912***6789".into(), activated: true })),
        ),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"id":"0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60","userName":"alice@example.com","firstName":"Alice","lastName":"Иванова","displayName":"Alice Иванова","email":"alice@example.com","mobilePhone":"+7912***6789","mobilePhoneActivationStatus":1,"isAdmin":false}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><id>0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60</id><userName>alice@example.com</userName><firstName>Alice</firstName><lastName>Иванова</lastName><displayName>Alice Иванова</displayName><email>alice@example.com</email><mobilePhone>+7912***6789</mobilePhone><mobilePhoneActivationStatus>1</mobilePhoneActivationStatus><isAdmin>false</isAdmin></response></result>",
    );
    check(
        Envelope::ok(200, Profile { is_admin: true, ..profile(None) }),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"id":"0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60","userName":"alice@example.com","firstName":"Alice","lastName":"Иванова","displayName":"Alice Иванова","email":"alice@example.com","isAdmin":true}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><id>0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60</id><userName>alice@example.com</userName><firstName>Alice</firstName><lastName>Иванова</lastName><displayName>Alice Иванова</displayName><email>alice@example.com</email><isAdmin>true</isAdmin></response></result>",
    );
    check(
        Envelope::ok(
            200,
            profile(Some(ProfilePhone { noise: "+4420****0958".into(), activated: false })),
        ),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"id":"0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60","userName":"alice@example.com","firstName":"Alice","lastName":"Иванова","displayName":"Alice Иванова","email":"alice@example.com","mobilePhone":"+4420****0958","mobilePhoneActivationStatus":0,"isAdmin":false}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><id>0b9c2f5e-6a4d-4c1e-9f3a-2d7b8e1c4a60</id><userName>alice@example.com</userName><firstName>Alice</firstName><lastName>Иванова</lastName><displayName>Alice Иванова</displayName><email>alice@example.com</email><mobilePhone>+4420****0958</mobilePhone><mobilePhoneActivationStatus>0</mobilePhoneActivationStatus><isAdmin>false</isAdmin></response></result>",
    );
}

#[test]
fn capabilities() {
    check(
        Envelope::ok(
            200,
            Capabilities {
                oauth_enabled: true,
                providers: vec!["google".into(), "yandex".into()],
                ..Capabilities::default()
            },
        ),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"ldapEnabled":false,"oauthEnabled":true,"providers":["google","yandex"],"ssoLabel":"","ssoUrl":""}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><ldapEnabled>false</ldapEnabled><oauthEnabled>true</oauthEnabled><providers>google</providers><providers>yandex</providers><ssoLabel></ssoLabel><ssoUrl></ssoUrl></response></result>",
    );
    check(
        Envelope::ok(200, Capabilities::default()),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"ldapEnabled":false,"oauthEnabled":false,"providers":[],"ssoLabel":"","ssoUrl":""}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><ldapEnabled>false</ldapEnabled><oauthEnabled>false</oauthEnabled><ssoLabel></ssoLabel><ssoUrl></ssoUrl></response></result>",
    );
}

#[test]
fn escaping_follows_upstream() {
    // A token with `/` shows upstream's `\/`; XML escapes markup characters and leaves `/` alone.
    check(
        Envelope::ok(
            200,
            TokenResponse { token: Some("a/b\"<&>".into()), ..TokenResponse::default() },
        ),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"token":"a\/b\"<&>"}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><token>a/b\"&lt;&amp;&gt;</token></response></result>",
    );
}

#[test]
fn content_types() {
    assert_eq!(Format::Json.content_type(), "application/json; charset=utf-8");
    assert_eq!(Format::Xml.content_type(), "text/xml; charset=utf-8");
}

#[test]
fn payload_counts() {
    assert_eq!(Payload::Bool(false).count(), 1);
    assert_eq!(Payload::BackupCodes(Vec::new()).count(), 0);
}

/// The token object must validate against DocSpace's `AuthenticationTokenDto` (`additionalProperties: false`):
/// only these keys, `token`/`phoneNoise`/`tfaKey` string or null, `expires` a string, `sms`/`tfa` booleans.
#[test]
fn token_object_fits_the_openapi_schema() {
    let expires = sms_expiry();
    let samples = [
        TokenResponse::sms_challenge(None, None),
        TokenResponse::sms_challenge(Some(expires), noise()),
        TokenResponse::tfa_challenge(Some("KV5E2MDFKZUEOYSF".into())),
        TokenResponse::tfa_challenge(None),
        TokenResponse::issued("t", expires),
    ];
    for sample in samples {
        let envelope: serde_json::Value =
            serde_json::from_slice(&Envelope::ok(200, sample).to_json()).unwrap();
        let response = envelope["response"].as_object().unwrap();
        assert!(response.contains_key("token"));
        for (key, value) in response {
            let fits = match key.as_str() {
                "token" => value.is_string() || value.is_null(),
                "phoneNoise" | "tfaKey" | "expires" => value.is_string(),
                "sms" | "tfa" => value == &serde_json::Value::Bool(true),
                _ => false,
            };
            assert!(fits, "{key}: {value}");
        }
    }
}

#[test]
fn thirdparty_providers_list() {
    let links = vec![
        auth_wire::ProviderLink { provider: "google".into(), linked: true },
        auth_wire::ProviderLink { provider: "github".into(), linked: false },
    ];
    check(
        Envelope::ok(200, links),
        r#"{"count":2,"status":0,"statusCode":200,"response":[{"provider":"google","linked":true},{"provider":"github","linked":false}]}"#,
        "<result><count>2</count><status>0</status><statusCode>200</statusCode><response><provider>google</provider><linked>true</linked></response><response><provider>github</provider><linked>false</linked></response></result>",
    );
}

/// Issue 17: the sessions list in upstream's shape (`items`, then `loginEvent`), one object per
/// session; unknown addresses and agents are omitted, never null.
#[test]
fn active_connections() {
    let at = |secs: i64| ApiDate::new(1_768_031_184 + secs, 420_689_700, 3 * 3600).unwrap();
    let list = ActiveConnections {
        items: vec![
            Connection {
                id: 9_007_199_254_740_991,
                ip: Some("2001:db8::1".into()),
                date: at(0),
                last_used: at(60),
                expires: at(86_400),
                user_agent: Some("Mozilla/5.0 <X11>".into()),
            },
            Connection {
                id: 7,
                ip: None,
                date: at(-60),
                last_used: at(-60),
                expires: at(86_340),
                user_agent: None,
            },
        ],
        login_event: 9_007_199_254_740_991,
    };
    check(
        Envelope::ok(200, list),
        r#"{"count":1,"status":0,"statusCode":200,"response":{"items":[{"id":9007199254740991,"ip":"2001:db8::1","date":"2026-01-10T10:46:24.4206897+03:00","lastUsed":"2026-01-10T10:47:24.4206897+03:00","expires":"2026-01-11T10:46:24.4206897+03:00","userAgent":"Mozilla\/5.0 <X11>"},{"id":7,"date":"2026-01-10T10:45:24.4206897+03:00","lastUsed":"2026-01-10T10:45:24.4206897+03:00","expires":"2026-01-11T10:45:24.4206897+03:00"}],"loginEvent":9007199254740991}}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response><items><id>9007199254740991</id><ip>2001:db8::1</ip><date>2026-01-10T10:46:24.4206897+03:00</date><lastUsed>2026-01-10T10:47:24.4206897+03:00</lastUsed><expires>2026-01-11T10:46:24.4206897+03:00</expires><userAgent>Mozilla/5.0 &lt;X11&gt;</userAgent></items><items><id>7</id><date>2026-01-10T10:45:24.4206897+03:00</date><lastUsed>2026-01-10T10:45:24.4206897+03:00</lastUsed><expires>2026-01-11T10:45:24.4206897+03:00</expires></items><loginEvent>9007199254740991</loginEvent></response></result>",
    );
    check(
        Envelope::ok(200, "Ada Lovelace".to_owned()),
        r#"{"count":1,"status":0,"statusCode":200,"response":"Ada Lovelace"}"#,
        "<result><count>1</count><status>0</status><statusCode>200</statusCode><response>Ada Lovelace</response></result>",
    );
}
