//! The sign-in page (spec §10, decision 0006): the HTML of `GET /login`, its script and style sheet
//! (compiled in, no external asset), and `POST /login/totp`, which draws a TOTP key's QR code.
//!
//! The page holds no state and checks no credential: its script calls the public API. The server's
//! part is what the script cannot know: the portal's name, language and providers, whether `return`
//! is on the portal's hosts, and the QR code.

use auth_core::Language;
use auth_wire::door::{LoginPageRequest, ReturnTo, TotpQrRequest, otpauth_uri};
use auth_wire::{ErrorCode, Params};
use bytes::Bytes;
use hyper::body::Body as HttpBody;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::allowed_return;
use crate::Router;
use crate::api::header;
use crate::respond::{Body, Failure};

/// The page's script, served as `/login/app.js`.
const SCRIPT: &str = include_str!("assets/app.js");
/// The page's style sheet, served as `/login/style.css`.
const STYLE: &str = include_str!("assets/style.css");

/// The headers of every front-door page and asset (spec §10): nothing from elsewhere, no framing,
/// no sniffing, no referrer (a `return` URL must not leak to a provider).
pub(super) fn secure_headers(resp: &mut Response<Body>) {
    let headers = [
        ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ];
    for (name, value) in headers {
        resp.headers_mut().insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
}

fn asset(content_type: &'static str, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::new(Bytes::from_static(text.as_bytes())));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// `GET /login/app.js`.
pub(super) fn script() -> Response<Body> {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /login/style.css`.
pub(super) fn style() -> Response<Body> {
    asset("text/css; charset=utf-8", STYLE)
}

fn html_response(status: StatusCode, markup: Markup) -> Response<Body> {
    let mut resp = Response::new(Body::new(Bytes::from(markup.into_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

/// The words of the page, in the portal's language.
struct Words {
    lang: &'static str,
    title: &'static str,
    email: &'static str,
    password: &'static str,
    sign_in: &'static str,
    phone_intro: &'static str,
    phone: &'static str,
    send_code: &'static str,
    sms_intro: &'static str,
    code: &'static str,
    confirm: &'static str,
    send_again: &'static str,
    enrol_intro: &'static str,
    totp_intro: &'static str,
    backup_hint: &'static str,
    signed_in_as: &'static str,
    sign_out: &'static str,
    or: &'static str,
    continue_with: &'static str,
    key: &'static str,
    open_app: &'static str,
    back: &'static str,
    forgot: &'static str,
    forgot_intro: &'static str,
    send_link: &'static str,
    reset_intro: &'static str,
    new_password: &'static str,
    repeat_password: &'static str,
    set_password: &'static str,
    /// Messages the script shows, by the API's error code (and a few of its own).
    messages: &'static [(&'static str, &'static str)],
}

const EN: Words = Words {
    lang: "en",
    title: "Sign in",
    email: "E-mail",
    password: "Password",
    sign_in: "Sign in",
    phone_intro: "This portal sends a code by SMS at every sign-in. Enter your mobile number to receive it.",
    phone: "Phone number",
    send_code: "Send code",
    sms_intro: "We sent a code by SMS to",
    code: "Code",
    confirm: "Confirm",
    send_again: "Send again",
    enrol_intro: "This portal asks for an authenticator app. Scan the QR code with it (or type the key), then enter the code it shows.",
    totp_intro: "Enter the code from your authenticator app, or one of your backup codes.",
    backup_hint: "A backup code works here too.",
    signed_in_as: "Signed in as",
    sign_out: "Sign out",
    or: "or",
    continue_with: "Continue with",
    key: "Key",
    open_app: "Open in the authenticator app",
    back: "Start again",
    forgot: "Forgot your password?",
    forgot_intro: "Enter the e-mail address of your account. We will send you a link to set a new password.",
    send_link: "Send the link",
    reset_intro: "Choose a new password for your account.",
    new_password: "New password",
    repeat_password: "Repeat the new password",
    set_password: "Set the password",
    messages: &[
        ("invalid_credentials", "The e-mail or the password is wrong."),
        ("invalid_code", "That code is wrong or has expired."),
        ("login_throttled", "Too many attempts. Wait a minute and try again."),
        ("sms_send_limited", "Too many text messages. Try again later."),
        ("code_attempts_exceeded", "Too many wrong codes. Wait a few minutes and try again."),
        (
            "second_factor_locked",
            "Too many attempts. Ask an administrator to reset two-factor authentication.",
        ),
        (
            "invalid_phone",
            "That does not look like a phone number. Enter it with the country code.",
        ),
        ("phone_required", "Enter your mobile phone number."),
        ("phone_already_activated", "A phone number is already set for this account."),
        ("bad_request", "Fill in every field."),
        ("portal_not_found", "This portal does not exist."),
        ("busy", "The server is busy. Try again in a moment."),
        ("provider_unavailable", "The sign-in provider is not answering. Try again in a moment."),
        ("network", "The server cannot be reached. Check your connection and try again."),
        ("other", "Something went wrong. Try again."),
        ("resend_in", "You can ask for a new code in {s} s."),
        ("sent", "A new code is on its way."),
        ("oauth_failed", "Signing in with the provider did not work. Try again."),
        (
            "reset_sent",
            "If this address belongs to an account, a mail with a link is on its way. The link works for an hour.",
        ),
        ("reset_limited", "Too many requests. Try again later."),
        (
            "invalid_reset_key",
            "This link no longer works: it was used, it expired, or the password changed since. Ask for a new one.",
        ),
        ("weak_password", "That password is too short or too common. Choose another."),
        ("mismatch", "The two passwords differ."),
        ("reset_done", "Your new password is set. Sign in with it."),
        ("forbidden", "That is not possible here. Ask your portal administrator."),
    ],
};

const RU: Words = Words {
    lang: "ru",
    title: "Вход",
    email: "Эл. почта",
    password: "Пароль",
    sign_in: "Войти",
    phone_intro: "На этом портале при каждом входе приходит код по SMS. Введите номер мобильного телефона, чтобы получить его.",
    phone: "Номер телефона",
    send_code: "Получить код",
    sms_intro: "Мы отправили код по SMS на номер",
    code: "Код",
    confirm: "Подтвердить",
    send_again: "Отправить ещё раз",
    enrol_intro: "Этот портал требует приложение-аутентификатор. Отсканируйте в нём QR-код (или введите ключ) и введите код, который оно покажет.",
    totp_intro: "Введите код из приложения-аутентификатора или один из резервных кодов.",
    backup_hint: "Здесь подойдёт и резервный код.",
    signed_in_as: "Вы вошли как",
    sign_out: "Выйти",
    or: "или",
    continue_with: "Войти через",
    key: "Ключ",
    open_app: "Открыть в приложении-аутентификаторе",
    back: "Начать заново",
    forgot: "Забыли пароль?",
    forgot_intro: "Введите адрес эл. почты вашей учётной записи. Мы пришлём ссылку, по которой можно задать новый пароль.",
    send_link: "Отправить ссылку",
    reset_intro: "Задайте новый пароль для вашей учётной записи.",
    new_password: "Новый пароль",
    repeat_password: "Повторите новый пароль",
    set_password: "Задать пароль",
    messages: &[
        ("invalid_credentials", "Неверная эл. почта или пароль."),
        ("invalid_code", "Код неверный или устарел."),
        ("login_throttled", "Слишком много попыток. Подождите минуту и попробуйте снова."),
        ("sms_send_limited", "Отправлено слишком много SMS. Попробуйте позже."),
        ("code_attempts_exceeded", "Слишком много неверных кодов. Подождите несколько минут."),
        (
            "second_factor_locked",
            "Слишком много попыток. Попросите администратора сбросить двухфакторную аутентификацию.",
        ),
        ("invalid_phone", "Это не похоже на номер телефона. Введите его с кодом страны."),
        ("phone_required", "Введите номер мобильного телефона."),
        ("phone_already_activated", "Для этой учётной записи номер уже задан."),
        ("bad_request", "Заполните все поля."),
        ("portal_not_found", "Такого портала нет."),
        ("busy", "Сервер занят. Попробуйте через минуту."),
        ("provider_unavailable", "Сервис входа не отвечает. Попробуйте через минуту."),
        ("network", "Сервер недоступен. Проверьте соединение и попробуйте снова."),
        ("other", "Что-то пошло не так. Попробуйте снова."),
        ("resend_in", "Новый код можно запросить через {s} с."),
        ("sent", "Новый код отправлен."),
        ("oauth_failed", "Не удалось войти через сервис. Попробуйте снова."),
        (
            "reset_sent",
            "Если этот адрес принадлежит учётной записи, на него отправлено письмо со ссылкой. Ссылка действует час.",
        ),
        ("reset_limited", "Слишком много запросов. Попробуйте позже."),
        (
            "invalid_reset_key",
            "Ссылка больше не действует: она использована, устарела или пароль уже изменён. Запросите новую.",
        ),
        (
            "weak_password",
            "Этот пароль слишком короткий или слишком распространённый. Выберите другой.",
        ),
        ("mismatch", "Пароли не совпадают."),
        ("reset_done", "Новый пароль задан. Войдите с ним."),
        ("forbidden", "Здесь это невозможно. Обратитесь к администратору портала."),
    ],
};

fn words(language: Language) -> &'static Words {
    match language {
        Language::Ru => &RU,
        _ => &EN,
    }
}

/// One labelled input: a visible `<label>` tied to it (spec §10: fields have visible labels).
fn field(id: &str, label: &str, kind: &str, autocomplete: &str, mode: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(id) type=(kind) autocomplete=(autocomplete) inputmode=[mode] required;
        }
    }
}

/// What one rendering of the page says beyond the portal's words.
#[derive(Default)]
pub(super) struct PageState<'a> {
    /// Where to go after signing in (already checked against the portal's hosts).
    pub(super) return_to: Option<&'a str>,
    /// An error to show at once (a key of the messages).
    pub(super) error: Option<&'static str>,
    /// Back from a provider: its name, the code and the PKCE verifier, for the script's API call.
    pub(super) oauth: Option<(&'a str, &'a str, &'a str)>,
    /// `/login/reset`: the script asks for a new password (the key stays in the URL, which the
    /// script reads and then drops from the address bar and the history).
    pub(super) reset: bool,
}

/// The whole page: every step is in it, the script shows one at a time.
fn page(
    w: &Words,
    portal: &str,
    state: &PageState<'_>,
    providers: &[String],
    resend_secs: i64,
) -> Markup {
    let return_to = state.return_to;
    let (oauth_provider, oauth_code, oauth_verifier) = match state.oauth {
        Some((p, c, v)) => (Some(p), Some(c), Some(v)),
        None => (None, None, None),
    };
    html! {
        (DOCTYPE)
        html lang=(w.lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (w.title) " · " (portal) }
                link rel="stylesheet" href="/login/style.css";
                script src="/login/app.js" defer {}
            }
            body {
                main #app
                    data-return=[return_to]
                    data-resend-secs=(resend_secs)
                    data-error=[state.error]
                    data-oauth-provider=[oauth_provider]
                    data-oauth-code=[oauth_code]
                    data-oauth-verifier=[oauth_verifier]
                    data-mode=[state.reset.then_some("reset")]
                {
                    header {
                        p.portal { (portal) }
                        h1 { (w.title) }
                    }
                    p #error.error role="alert" hidden {}
                    p #notice.notice role="status" hidden {}

                    form #step-password.step novalidate {
                        (field("email", w.email, "email", "username", None))
                        (field("password", w.password, "password", "current-password", None))
                        button type="submit" { (w.sign_in) }
                        p.hint { a #forgot href="/login#forgot" { (w.forgot) } }
                        @if !providers.is_empty() {
                            p.or { span { (w.or) } }
                            div.social {
                                @for p in providers {
                                    button.secondary type="button" data-provider=(p) {
                                        (w.continue_with) " " (p)
                                    }
                                }
                            }
                        }
                    }

                    form #step-phone.step novalidate hidden {
                        p { (w.phone_intro) }
                        (field("phone", w.phone, "tel", "tel", Some("tel")))
                        button type="submit" { (w.send_code) }
                    }

                    form #step-sms.step novalidate hidden {
                        p { (w.sms_intro) " " strong #phone-noise {} }
                        (field("sms-code", w.code, "text", "one-time-code", Some("numeric")))
                        button type="submit" { (w.confirm) }
                        button #resend.secondary type="button" disabled { (w.send_again) }
                        p #resend-wait.hint {}
                    }

                    form #step-totp.step novalidate hidden {
                        p #totp-enrol-intro hidden { (w.enrol_intro) }
                        p #totp-intro { (w.totp_intro) }
                        div #qr {}
                        (field("totp-code", w.code, "text", "one-time-code", None))
                        p.hint { (w.backup_hint) }
                        button type="submit" { (w.confirm) }
                    }

                    form #step-forgot.step novalidate hidden {
                        p { (w.forgot_intro) }
                        (field("forgot-email", w.email, "email", "username", None))
                        button type="submit" { (w.send_link) }
                    }

                    form #step-reset.step novalidate hidden {
                        p { (w.reset_intro) }
                        (field("new-password", w.new_password, "password", "new-password", None))
                        (field("repeat-password", w.repeat_password, "password", "new-password", None))
                        button type="submit" { (w.set_password) }
                    }

                    section #signed-in.step hidden {
                        p { (w.signed_in_as) " " strong #who {} }
                        button #logout.secondary type="button" { (w.sign_out) }
                    }

                    p.restart { a #restart href="/login" hidden { (w.back) } }
                    div #messages hidden {
                        @for (key, text) in w.messages {
                            span data-key=(key) { (text) }
                        }
                    }
                }
            }
        }
    }
}

/// The QR code block for a TOTP key: the SVG, the key as text beside it, and the URI as a link.
fn totp_fragment(w: &Words, uri: &str, key: &str) -> Result<Markup, Failure> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| {
        Failure::with_message(ErrorCode::BadRequest, format!("cannot draw the QR code: {e}"))
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // The XML declaration means nothing inside HTML.
    let svg = svg.split_once("?>").map_or(svg.as_str(), |(_, rest)| rest).to_owned();
    // Groups of four are easier to type; apps ignore the spaces.
    let grouped: Vec<String> =
        key.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    Ok(html! {
        figure.qr {
            (PreEscaped(svg))
            figcaption {
                span { (w.key) ": " }
                code #totp-key { (grouped.join(" ")) }
            }
        }
        p.hint { a #otpauth href=(uri) { (w.open_app) } }
    })
}

/// The page in the portal's words, for the request's portal.
pub(super) fn render(
    portal: &auth_core::Portal,
    providers: &[String],
    state: &PageState<'_>,
) -> Response<Body> {
    let settings = &portal.settings;
    // "Send again" waits for the portal's resend cool-down, which the API would refuse sooner.
    let resend = settings.sms.resend_cooldown.as_secs().max(1);
    html_response(
        StatusCode::OK,
        page(words(settings.language), &portal.name, state, providers, resend),
    )
}

impl Router {
    /// `GET /login`.
    pub(super) async fn login_page<B>(&self, req: Request<B>) -> Result<Response<Body>, Failure> {
        let host = header(&req, HOST).unwrap_or("").to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let ctx = self.context(&req, &host).await?;
        let params = Params::builder().query(&query).build();
        let request = LoginPageRequest::try_from(&params).unwrap_or_default();
        // An unchecked `return` would make this page an open redirect: only the portal's own hosts.
        let back = request.return_to.and_then(|r| allowed_return(r, &ctx.portal.hosts, &host));
        let providers = self.shared.service.social_providers(&ctx.portal);
        let state =
            PageState { return_to: back.as_ref().map(ReturnTo::as_str), ..PageState::default() };
        Ok(render(&ctx.portal, &providers, &state))
    }

    /// `GET /login/reset?key=…`: the page, asking for a new password (spec §14). The key is not
    /// checked here: the script sends it with the new password, and the API takes it once.
    pub(super) async fn reset_page<B>(&self, req: Request<B>) -> Result<Response<Body>, Failure> {
        let host = header(&req, HOST).unwrap_or("").to_owned();
        let ctx = self.context(&req, &host).await?;
        let providers = self.shared.service.social_providers(&ctx.portal);
        let state = PageState { reset: true, ..PageState::default() };
        Ok(render(&ctx.portal, &providers, &state))
    }

    /// `POST /login/totp`: the QR code of the key the API's step 1 answered, for this portal's issuer.
    pub(super) async fn login_totp<B>(&self, req: Request<B>) -> Result<Response<Body>, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let host = header(&req, HOST).unwrap_or("").to_owned();
        let ctx = self.context(&req, &host).await?;
        let params = self.read_params(None, None, req).await?;
        let r = TotpQrRequest::try_from(&params)?;
        let portal = &ctx.portal;
        let issuer = match portal.settings.totp_issuer.trim() {
            "" => portal.name.as_str(),
            issuer => issuer,
        };
        let uri = otpauth_uri(issuer, &r.account, &r.key);
        let fragment = totp_fragment(words(portal.settings.language), &uri, &r.key)?;
        Ok(html_response(StatusCode::OK, fragment))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message() {
        let keys = |w: &Words| w.messages.iter().map(|(k, _)| *k).collect::<Vec<_>>();
        assert_eq!(keys(&EN), keys(&RU));
    }

    #[test]
    fn the_page_labels_its_fields_and_keeps_return_only_when_given() {
        let back = ReturnTo::parse("/docs?a=1&b=\"x\"").unwrap();
        let state = PageState { return_to: Some(back.as_str()), ..PageState::default() };
        let html = page(&RU, "Портал <1>", &state, &["corp".to_owned()], 30).into_string();
        for label in ["Эл. почта", "Пароль", "Номер телефона", "Код"] {
            assert!(html.contains(&format!(">{label}</label>")), "{label} in {html}");
        }
        assert!(html.contains("data-return=\"/docs?a=1&amp;b=&quot;x&quot;\""), "{html}");
        assert!(html.contains("Портал &lt;1&gt;"));
        assert!(html.contains("data-provider=\"corp\""));
        let html = page(&EN, "P", &PageState::default(), &[], 30).into_string();
        assert!(!html.contains("data-return"), "{html}");
        assert!(!html.contains("<script>"), "no inline script under the CSP");
    }

    #[test]
    fn the_qr_block_shows_the_key_and_the_uri() {
        let uri = otpauth_uri("R7", "ann@example.com", "JBSWY3DPEHPK3PXP");
        let html = totp_fragment(&EN, &uri, "JBSWY3DPEHPK3PXP").unwrap().into_string();
        assert!(html.starts_with("<figure class=\"qr\"><svg"), "{html}");
        assert!(html.contains(">JBSW Y3DP EHPK 3PXP</code>"));
        assert!(html.contains(
            "href=\"otpauth://totp/R7:ann%40example.com?secret=JBSWY3DPEHPK3PXP&amp;issuer=R7\""
        ));
    }
}
