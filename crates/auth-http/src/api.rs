//! The request path: match the endpoint table, negotiate, read the body within its limits, resolve
//! the portal, decode the endpoint's typed request, call the capability, write the envelope.
//!
//! Everything about an endpoint that is not how to answer it (path, method, whether it takes
//! credentials or a token, its metrics name) comes from `auth_wire::api`; here is one arm per endpoint.

use std::net::{IpAddr, SocketAddr};

use auth_core::service::{ActiveSessions, BackupCodeView};
use auth_core::{
    LoginMethod, LoginOutcome, Password, RequestContext, SecretString, Session, SessionError,
    SocialProof, TokenIssued, UserId, Via,
};
use auth_wire::api::{self, Endpoint, PathMatch};
use auth_wire::{
    ActiveConnections, ApiDate, BackupCode, Capabilities, Connection, ErrorCode, Format, Login,
    Params, Profile, ProfilePhone, ProviderLink, TokenResponse, negotiate,
};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Body as HttpBody;
use hyper::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, USER_AGENT,
};
use hyper::{Request, Response, StatusCode};

use crate::Router;
use crate::metrics::Counted;
use crate::respond::{self, Body, Failure};

/// The peer address of a connection, put into request extensions by [`crate::serve`]; a program that
/// mounts the router elsewhere inserts it the same way (without it the peer is taken as 0.0.0.0).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub SocketAddr);

/// Marks a request that arrived over TLS on this server's own listener, put into request extensions
/// by [`crate::serve_with`]; it makes the cookies `Secure` (spec §10).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// Whether the browser reached us over HTTPS: on our TLS listener, or through a trusted proxy that
/// says `X-Forwarded-Proto: https` (spec §10); either way the cookies must be `Secure`.
pub(crate) fn came_over_tls<B>(req: &Request<B>, peer: IpAddr, trusted: &[ipnet::IpNet]) -> bool {
    if req.extensions().get::<OverTls>().is_some() {
        return true;
    }
    let peer = peer.to_canonical();
    trusted.iter().any(|n| n.contains(&peer))
        && header(req, hyper::header::HeaderName::from_static("x-forwarded-proto"))
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

pub(crate) fn header<B>(req: &Request<B>, name: hyper::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Decodes an endpoint's typed request from the bag (400 with the decoder's words when it cannot).
fn decode<'p, T>(params: &'p Params) -> Result<T, Failure>
where
    T: TryFrom<&'p Params, Error = api::RequestError>,
{
    T::try_from(params).map_err(Failure::from)
}

/// The core's sign-in command from the wire's typed login: the one place the two meet.
fn login_method(login: Login) -> Result<LoginMethod, Failure> {
    Ok(match login {
        Login::Password { user_name, password } => LoginMethod::Password {
            login: user_name,
            password: Password::new(password.expose())
                .map_err(|e| Failure::with_message(ErrorCode::BadRequest, e.to_string()))?,
        },
        Login::Social { provider, access_token, code_oauth, code_verifier } => {
            LoginMethod::Social {
                provider,
                proof: SocialProof {
                    access_token: access_token.map(|t| SecretString::new(t.expose())),
                    code_oauth: code_oauth.map(|c| SecretString::new(c.expose())),
                    code_verifier: code_verifier.map(|v| SecretString::new(v.expose())),
                },
            }
        }
    })
}

impl Router {
    /// Answers one request. Never fails: every problem becomes an error envelope.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let door = match self.shared.exposure {
            // The metrics listener has no front door.
            crate::Exposure::MetricsOnly => None,
            _ => crate::door::Route::of_path(req.uri().path()),
        };
        let (counted, mut resp) = match door {
            Some(route) => (Counted::Door(route), self.door(route, req).await),
            None => {
                let (endpoint, resp) = self.dispatch(req).await;
                (endpoint.map_or(Counted::NotFound, Counted::Api), resp)
            }
        };
        // Tokens, codes and profiles must never sit in a shared or browser cache (spec §5.8); one
        // header on every answer, errors included, is simpler than deciding which could be cached.
        resp.headers_mut().insert(
            hyper::header::CACHE_CONTROL,
            hyper::header::HeaderValue::from_static("no-store"),
        );
        let took = started.elapsed();
        self.shared.metrics.record(counted, resp.status().as_u16(), took);
        let route = counted.name();
        // One line per request: what and how it went, never parameters, bodies or headers.
        tracing::debug!(%method, route, status = resp.status().as_u16(), micros = took.as_micros() as u64, "request");
        resp
    }

    /// Routes by the table; answers 404 and 405 itself. The endpoint (if the path named one) comes
    /// back for the metrics.
    async fn dispatch<B>(&self, req: Request<B>) -> (Option<Endpoint>, Response<Body>)
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let accept = header(&req, ACCEPT);
        // The paths a listener does not serve are unknown there, as if the table had no row for them.
        let exposed = |m: &PathMatch| {
            let get = m.endpoint("GET").ok();
            match self.shared.exposure {
                crate::Exposure::Everything => true,
                crate::Exposure::WithoutMetrics => get != Some(Endpoint::Metrics),
                crate::Exposure::MetricsOnly => {
                    matches!(get, Some(Endpoint::Metrics | Endpoint::Healthz | Endpoint::Readyz))
                }
            }
        };
        let Some(matched) = api::match_path(req.uri().path()).filter(exposed) else {
            let format = negotiate(None, accept);
            return (None, Failure::new(ErrorCode::NotFound).into_response(format));
        };
        let format = negotiate(matched.suffix, accept);
        let endpoint = match matched.endpoint(req.method().as_str()) {
            Ok(e) => e,
            Err(refused) => {
                let mut f = Failure::new(ErrorCode::MethodNotAllowed);
                f.allow = Some(refused.header_value());
                return (Some(refused.path_of), f.into_response(format));
            }
        };
        let resp = match self.endpoint(endpoint, matched, format, req).await {
            Ok(r) => r,
            Err(f) => f.into_response(format),
        };
        (Some(endpoint), resp)
    }

    /// One arm per endpoint of the table.
    async fn endpoint<B>(
        &self,
        endpoint: Endpoint,
        matched: PathMatch,
        format: Format,
        req: Request<B>,
    ) -> Result<Response<Body>, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match endpoint {
            Endpoint::Healthz => {
                return Ok(respond::text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ok\n".into(),
                ));
            }
            Endpoint::Readyz => return Ok(self.readyz().await),
            Endpoint::Metrics => {
                let format = crate::metrics::Format::negotiate(header(&req, ACCEPT));
                let text = crate::metrics::scrape(
                    &self.shared.registry,
                    &self.shared.scrape_hooks,
                    format,
                )
                .await
                .map_err(|_| Failure::internal("the metrics could not be encoded"))?;
                return Ok(respond::text(StatusCode::OK, format.content_type(), text));
            }
            _ => {}
        }
        let meta = endpoint.metadata();
        let now = self.shared.service.now();
        let host = header(&req, HOST).or_else(|| req.uri().host()).unwrap_or("").to_owned();
        let ctx = self.context(&req, &host).await?;
        let (peer, _) = self.peer_of(&req);
        let secure = came_over_tls(&req, peer, &self.shared.config.trusted_proxies);
        let token = bearer_token(&req);
        // Basic is a credentials carrier on the credential endpoints only (spec §2).
        let basic =
            if meta.credentials { header(&req, AUTHORIZATION).map(str::to_owned) } else { None };
        let params = self.read_params(meta.capture().zip(matched.capture), basic, req).await?;
        // Admission before any store work: a credential request costs a password hash, and the hashing
        // pool can only take so many; the excess is answered 503 now, not after store round trips.
        // It comes after the body is read, so slow uploads cannot hold the slots and starve logins.
        let _slot = if meta.credentials {
            // Not logged per request: under a flood that would be a log line per refusal;
            // `/metrics` counts the 503s.
            Some(self.shared.credential_slots.clone().try_acquire_owned().map_err(|_| Failure {
                retry_after_secs: Some(1),
                ..Failure::new(ErrorCode::Busy)
            })?)
        } else {
            None
        };
        let sign_in = |e| Failure::sign_in(e, now);

        match endpoint {
            Endpoint::Healthz | Endpoint::Readyz | Endpoint::Metrics => {
                Err(Failure::new(ErrorCode::NotFound))
            }
            Endpoint::CheckToken => {
                let valid = match token {
                    Some(t) => {
                        self.shared.service.sessions().authenticate(&ctx, t.expose()).await.is_ok()
                    }
                    None => false,
                };
                Ok(respond::ok(format, valid))
            }
            Endpoint::Authenticate => {
                let r: api::authenticate::Request = decode(&params)?;
                let login = login_method(r.login)?;
                let outcome =
                    self.shared.service.sign_in().login(&ctx, &login).await.map_err(sign_in)?;
                Ok(outcome_response(&ctx, secure, format, outcome))
            }
            Endpoint::SetPhone => {
                let r: api::set_phone::Request = decode(&params)?;
                let login = login_method(r.login)?;
                let outcome = self
                    .shared
                    .service
                    .sign_in()
                    .set_phone(&ctx, &login, r.mobile_phone.as_deref())
                    .await
                    .map_err(sign_in)?;
                Ok(outcome_response(&ctx, secure, format, outcome))
            }
            Endpoint::SendSms => {
                let r: api::send_sms::Request = decode(&params)?;
                let login = login_method(r.login)?;
                let outcome =
                    self.shared.service.sign_in().send_sms(&ctx, &login).await.map_err(sign_in)?;
                Ok(outcome_response(&ctx, secure, format, outcome))
            }
            Endpoint::Code => {
                let r: api::code::Request = decode(&params)?;
                let login = login_method(r.login)?;
                let issued = self
                    .shared
                    .service
                    .sign_in()
                    .verify_code(&ctx, &login, r.code.expose())
                    .await
                    .map_err(sign_in)?;
                Ok(token_response(&ctx, secure, format, issued))
            }
            Endpoint::Logout => {
                let session = self.session(&ctx, token).await?;
                self.shared.service.sessions().logout(&ctx, &session).await?;
                let mut resp = respond::ok(format, true);
                respond::clear_token_cookie(&mut resp, &ctx.portal, secure);
                Ok(resp)
            }
            Endpoint::SelfProfile => {
                let session = self.session(&ctx, token).await?;
                let p = self.shared.service.sessions().profile(&session);
                let phone =
                    p.phone_noise.map(|noise| ProfilePhone { noise, activated: p.phone_activated });
                Ok(respond::ok(
                    format,
                    Profile {
                        id: p.id.to_string(),
                        user_name: p.email.clone(),
                        first_name: p.first_name,
                        last_name: p.last_name,
                        display_name: p.display_name,
                        email: p.email,
                        phone,
                        is_admin: p.is_admin,
                    },
                ))
            }
            Endpoint::Capabilities => {
                let providers = self.shared.service.social_providers(&ctx.portal);
                Ok(respond::ok(
                    format,
                    Capabilities {
                        ldap_enabled: self.shared.service.directory_for(&ctx.portal).is_some(),
                        oauth_enabled: !providers.is_empty(),
                        providers,
                        ..Capabilities::default()
                    },
                ))
            }
            Endpoint::BackupCodes => {
                let session = self.session(&ctx, token).await?;
                let codes = self.shared.service.tfa_settings().backup_codes(&session).await?;
                Ok(respond::ok(format, backup_list(codes)))
            }
            Endpoint::NewBackupCodes => {
                let session = self.session(&ctx, token).await?;
                let codes =
                    self.shared.service.tfa_settings().new_backup_codes(&ctx, &session).await?;
                Ok(respond::ok(format, backup_list(codes)))
            }
            Endpoint::NewApp => {
                let session = self.session(&ctx, token).await?;
                let r: api::new_app::Request = decode(&params)?;
                let target = match r.id {
                    None => None,
                    Some(id) => Some(id.parse::<UserId>().map_err(|_| {
                        Failure::with_message(ErrorCode::BadRequest, "id is not a user id")
                    })?),
                };
                self.shared.service.tfa_settings().reset_tfa_app(&ctx, &session, target).await?;
                Ok(respond::ok(format, true))
            }
            Endpoint::LinkAccount => {
                let session = self.session(&ctx, token).await?;
                let r: api::link_account::Request = decode(&params)?;
                let proof = SocialProof {
                    access_token: r.access_token.map(|t| SecretString::new(t.expose())),
                    code_oauth: r.code_oauth.map(|c| SecretString::new(c.expose())),
                    code_verifier: None,
                };
                self.shared.service.links().link(&ctx, &session, &r.provider, &proof).await?;
                Ok(respond::ok(format, true))
            }
            Endpoint::UnlinkAccount => {
                let session = self.session(&ctx, token).await?;
                let r: api::unlink_account::Request = decode(&params)?;
                self.shared.service.links().unlink(&ctx, &session, &r.provider).await?;
                Ok(respond::ok(format, true))
            }
            Endpoint::ChangePassword => {
                let session = self.session(&ctx, token).await?;
                let r: api::change_password::Request = decode(&params)?;
                let current = Password::new(r.current_password.expose())
                    .map_err(|_| Failure::new(auth_wire::ErrorCode::BadRequest))?;
                let new = SecretString::new(r.password.expose());
                self.shared
                    .service
                    .account()
                    .change_password(&ctx, &session, &current, &new)
                    .await
                    .map_err(|e| Failure::account(e, self.shared.service.now()))?;
                Ok(respond::ok(format, true))
            }
            Endpoint::RequestPasswordReset => {
                let r: api::request_password_reset::Request = decode(&params)?;
                self.shared
                    .service
                    .recovery()
                    .request_reset(&ctx, &r.email)
                    .await
                    .map_err(|e| Failure::recovery(e, self.shared.service.now()))?;
                Ok(respond::ok(format, true))
            }
            Endpoint::ResetPassword => {
                let r: api::reset_password::Request = decode(&params)?;
                let key = SecretString::new(r.key.expose());
                let new = SecretString::new(r.password.expose());
                self.shared
                    .service
                    .recovery()
                    .reset_password(&ctx, &key, &new)
                    .await
                    .map_err(|e| Failure::recovery(e, self.shared.service.now()))?;
                Ok(respond::ok(format, true))
            }
            Endpoint::ActiveConnections => {
                let session = self.session(&ctx, token).await?;
                let all = self.shared.service.sessions().active_sessions(&session).await?;
                Ok(respond::ok(format, connections(&ctx, all)))
            }
            Endpoint::LogoutConnection => {
                let session = self.session(&ctx, token).await?;
                let r: api::logout_connection::Request = decode(&params)?;
                let ended =
                    self.shared.service.sessions().end_session(&ctx, &session, r.id).await?;
                let mut resp = respond::ok(format, ended);
                // Ending the session the request came with is a logout: the cookie goes too.
                if ended && r.id == session.token_id {
                    respond::clear_token_cookie(&mut resp, &ctx.portal, secure);
                }
                Ok(resp)
            }
            Endpoint::LogoutAllExceptThis => {
                let session = self.session(&ctx, token).await?;
                self.shared.service.sessions().end_other_sessions(&ctx, &session).await?;
                let name = self.shared.service.sessions().profile(&session).display_name;
                Ok(respond::ok(format, name))
            }
            Endpoint::LogoutAll => {
                let session = self.session(&ctx, token).await?;
                self.shared.service.sessions().end_all_sessions(&ctx, &session).await?;
                let mut resp = respond::ok(format, true);
                respond::clear_token_cookie(&mut resp, &ctx.portal, secure);
                Ok(resp)
            }
            Endpoint::Providers => {
                let session = self.session(&ctx, token).await?;
                let list = self.shared.service.links().providers(&ctx, &session).await?;
                let list: Vec<ProviderLink> = list
                    .into_iter()
                    .map(|p| ProviderLink { provider: p.provider, linked: p.linked })
                    .collect();
                Ok(respond::ok(format, list))
            }
        }
    }

    /// The request's portal (by `host`) and client, as every capability takes them.
    ///
    /// Not `async` itself: the request (whose body need not be `Sync`) is read before the future
    /// that looks the portal up, so that future stays `Send`.
    pub(crate) fn context<B>(
        &self,
        req: &Request<B>,
        host: &str,
    ) -> impl std::future::Future<Output = Result<RequestContext, Failure>> + Send + use<B> {
        let (peer, _) = self.peer_of(req);
        let forwarded = req.headers().get_all("x-forwarded-for").iter().map(|v| v.as_bytes());
        let client = crate::client_ip(peer, forwarded, &self.shared.config.trusted_proxies);
        let user_agent: Option<String> =
            header(req, USER_AGENT).map(|ua| ua.chars().take(256).collect());
        let device = cookie(req, respond::DEVICE_COOKIE).map(str::to_owned);
        let service = self.shared.service.clone();
        let host = host.to_owned();
        async move {
            let portal = service.portal_for_host(&host).await?;
            Ok(RequestContext {
                portal,
                client_ip: client.ip,
                client_ip_known: client.known,
                user_agent,
                device,
            })
        }
    }

    async fn session(
        &self,
        ctx: &RequestContext,
        token: Option<SecretString>,
    ) -> Result<Session, SessionError> {
        let token = token.ok_or(SessionError::Unauthorized)?;
        self.shared.service.sessions().authenticate(ctx, token.expose()).await
    }

    async fn readyz(&self) -> Response<Body> {
        match self.shared.service.store().list_portals().await {
            Ok(_) => respond::text(StatusCode::OK, "text/plain; charset=utf-8", "ready\n".into()),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                respond::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "store unavailable\n".into(),
                )
            }
        }
    }

    /// Reads the body (bounded in size and time) and builds the parameter bag: path > query > body.
    pub(crate) async fn read_params<B>(
        &self,
        capture: Option<(&'static str, String)>,
        basic: Option<String>,
        req: Request<B>,
    ) -> Result<Params, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = self.shared.config.body_limit;
        let declared = header(&req, CONTENT_LENGTH).and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        let content_type = header(&req, CONTENT_TYPE).map(str::to_owned);
        let query = req.uri().query().unwrap_or("").to_owned();
        // Most token-holder requests carry no body: skip the body timer and the collection for them.
        let body = if req.body().is_end_stream() {
            Bytes::new()
        } else {
            self.read_body(req.into_body(), limit).await?
        };
        let mut builder = Params::builder().limit(limit);
        // The path's captured segment (`{code}`, `{id}`) goes first in the bag, under the name
        // its template gives it.
        if let Some((name, value)) = capture {
            builder = builder.path(name, value);
        }
        if let Some(authorization) = basic {
            builder = builder.basic_auth(&authorization);
        }
        if !query.is_empty() {
            builder = builder.query(&query);
        }
        let builder = builder
            .body(content_type.as_deref(), &body)
            .map_err(|e| Failure::with_message(e.error_code(), e.to_string()))?;
        Ok(builder.build())
    }

    /// Reads a body completely, within the size limit and the body timeout.
    async fn read_body<B>(&self, body: B, limit: usize) -> Result<Bytes, Failure>
    where
        B: HttpBody<Data = Bytes> + Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limited = http_body_util::Limited::new(body, limit);
        let collected =
            tokio::time::timeout(self.shared.config.body_timeout, limited.collect()).await;
        match collected {
            Err(_) => Err(Failure::with_message(
                ErrorCode::RequestTimeout,
                "request body not received in time",
            )),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                Err(too_large(limit))
            }
            Ok(Err(e)) => Err(Failure::with_message(
                ErrorCode::BadRequest,
                format!("cannot read request body: {e}"),
            )),
            Ok(Ok(c)) => Ok(c.to_bytes()),
        }
    }
}

/// The 413 answer for a body over `limit` bytes (declared or streamed).
fn too_large(limit: usize) -> Failure {
    Failure::with_message(
        ErrorCode::PayloadTooLarge,
        format!("request body larger than {limit} bytes"),
    )
}

/// The token of a token-holder request: `Authorization` (raw or `Bearer`) when present, else the cookie.
pub(crate) fn bearer_token<B>(req: &Request<B>) -> Option<SecretString> {
    if let Some(auth) = header(req, AUTHORIZATION) {
        let auth = auth.trim();
        let token = match auth.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => auth,
        };
        return Some(SecretString::new(token));
    }
    cookie(req, respond::COOKIE).map(SecretString::new)
}

/// The first non-empty value of the cookie `name`.
pub(crate) fn cookie<'r, B>(req: &'r Request<B>, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, value) = pair.trim().split_once('=')?;
            (n == name && !value.is_empty()).then_some(value)
        })
}

fn outcome_response(
    ctx: &RequestContext,
    secure: bool,
    format: Format,
    outcome: LoginOutcome,
) -> Response<Body> {
    match outcome {
        LoginOutcome::Token(issued) => token_response(ctx, secure, format, issued),
        LoginOutcome::SmsPending { expires, phone_noise } => respond::ok(
            format,
            TokenResponse::sms_challenge(
                expires.and_then(|e| respond::date(&ctx.portal, e)),
                phone_noise,
            ),
        ),
        LoginOutcome::TotpPending { tfa_key } => respond::ok(
            format,
            TokenResponse::tfa_challenge(tfa_key.map(|k| k.expose().to_owned())),
        ),
    }
}

fn token_response(
    ctx: &RequestContext,
    secure: bool,
    format: Format,
    issued: TokenIssued,
) -> Response<Body> {
    let mut body = TokenResponse {
        token: Some(issued.token.expose().to_owned()),
        expires: respond::date(&ctx.portal, issued.expires),
        ..TokenResponse::default()
    };
    match issued.via {
        Via::Password => {}
        Via::Sms { phone_noise } => {
            body.sms = true;
            body.phone_noise = Some(phone_noise);
        }
        Via::Totp => body.tfa = true,
    }
    let mut resp = respond::ok(format, body);
    let secure = secure || ctx.portal.settings.https;
    respond::set_token_cookie(&mut resp, secure, issued.token.expose(), issued.expires);
    let (device, device_expires) = &issued.device;
    respond::set_device_cookie(&mut resp, secure, device.expose(), *device_expires);
    resp
}

/// The sessions list on the wire, its dates in the portal's time zone.
fn connections(ctx: &RequestContext, all: ActiveSessions) -> ActiveConnections {
    let date = |t| respond::date(&ctx.portal, t).unwrap_or(ApiDate::MIN);
    ActiveConnections {
        items: all
            .items
            .into_iter()
            .map(|s| Connection {
                id: s.id,
                ip: s.client_ip.map(|ip| ip.to_string()),
                date: date(s.issued_at),
                last_used: date(s.last_used_at),
                expires: date(s.expires_at),
                user_agent: s.user_agent,
            })
            .collect(),
        login_event: all.current,
    }
}

fn backup_list(codes: Vec<BackupCodeView>) -> Vec<BackupCode> {
    codes
        .into_iter()
        .map(|c| BackupCode { is_used: c.used, code: c.code.expose().to_owned() })
        .collect()
}
