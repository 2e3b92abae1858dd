//! The presets: each provider's documented endpoints, how it wants an access token presented, and
//! which profile fields carry the subject, the e-mail, its verified flag and the names.
//!
//! Every endpoint can be overridden in the configuration (which is also how the tests point a preset
//! at a local server). An e-mail only counts as verified where the provider has a field saying so:
//! Yandex, VK, Mail.ru and Facebook return an address but no such flag, so their addresses are never
//! verified and `link_by_verified_email` has no effect on them. Where a provider's documentation
//! leaves a detail open, the comment at that preset says so.

use super::config::ProviderKind;

/// How an access token is shown to the user-info endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenPresentation {
    /// `Authorization: Bearer <token>` on a GET (RFC 6750; every OpenID provider).
    Bearer,
    /// `Authorization: OAuth <token>` on a GET (Yandex's documented "recommended method").
    OAuthScheme,
    /// `?access_token=<token>` on a GET (Mail.ru's documented form).
    Query,
    /// A form POST of `client_id` and `access_token` (VK ID's `oauth2/user_info`).
    FormPost,
}

/// How the client authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// Where a profile's fields are (dotted paths into the user-info JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) subject: &'static str,
    pub(crate) email: Option<&'static str>,
    /// The provider's own "this e-mail is verified" flag; `None` when it has none.
    pub(crate) email_verified: Option<&'static str>,
    pub(crate) first_name: Option<&'static str>,
    pub(crate) last_name: Option<&'static str>,
}

/// The standard OpenID claims, used by every OpenID kind's ID tokens and user-info answers.
pub(crate) const OIDC_FIELDS: Fields = Fields {
    subject: "sub",
    email: Some("email"),
    email_verified: Some("email_verified"),
    first_name: Some("given_name"),
    last_name: Some("family_name"),
};

/// One preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Preset {
    /// The OpenID issuer whose discovery document gives the endpoints (OpenID presets).
    pub(crate) issuer: Option<&'static str>,
    /// Other `iss` values the provider documents for its ID tokens.
    pub(crate) extra_issuers: &'static [&'static str],
    /// Whether the discovered issuer may be a `{tenantid}` template (Microsoft's multi-tenant
    /// endpoints), filled in from each token's `tid` claim.
    pub(crate) tenant_template: bool,
    pub(crate) authorization_endpoint: Option<&'static str>,
    pub(crate) token_endpoint: Option<&'static str>,
    pub(crate) userinfo_endpoint: Option<&'static str>,
    pub(crate) presentation: TokenPresentation,
    pub(crate) client_auth: ClientAuth,
    pub(crate) fields: Fields,
    /// GitHub: the e-mails come from `{userinfo}/emails`, where each address says whether it is
    /// primary and verified.
    pub(crate) emails_list: bool,
    /// Facebook: user-info calls carry `appsecret_proof` (HMAC-SHA256 of the token under the app
    /// secret), which apps with "Require App Secret" demand and which proves the call is the app's.
    pub(crate) appsecret_proof: bool,
    /// An extra claim that also marks the e-mail verified (Microsoft's `xms_edov`).
    pub(crate) extra_verified_claim: Option<&'static str>,
}

const BASE: Preset = Preset {
    issuer: None,
    extra_issuers: &[],
    tenant_template: false,
    authorization_endpoint: None,
    token_endpoint: None,
    userinfo_endpoint: None,
    presentation: TokenPresentation::Bearer,
    client_auth: ClientAuth::Basic,
    fields: OIDC_FIELDS,
    emails_list: false,
    appsecret_proof: false,
    extra_verified_claim: None,
};

/// The preset of a kind (the generic kinds get the neutral base, filled in by the configuration).
pub(crate) fn preset(kind: ProviderKind) -> Preset {
    match kind {
        ProviderKind::Oidc | ProviderKind::OAuth2 => BASE,
        // Google documents both spellings of `iss` for its ID tokens.
        ProviderKind::Google => Preset {
            issuer: Some("https://accounts.google.com"),
            extra_issuers: &["accounts.google.com"],
            ..BASE
        },
        // The `common` endpoint serves work, school and personal accounts; its discovery document's
        // issuer is `https://login.microsoftonline.com/{tenantid}/v2.0`, so `iss` is checked against
        // that template with the token's `tid`. Microsoft documents `email` as unverified and
        // optional; the optional claim `xms_edov` ("e-mail domain owner verified") is taken as the
        // verified flag when the app requests it (whether tenants send it as a boolean everywhere is
        // not documented; "true" and 1 are accepted too). A Microsoft Graph access token is itself a
        // JWT for Graph, not for us: clients send the ID token.
        ProviderKind::Microsoft => Preset {
            issuer: Some("https://login.microsoftonline.com/common/v2.0"),
            tenant_template: true,
            extra_verified_claim: Some("xms_edov"),
            ..BASE
        },
        // Yandex ID: `GET https://login.yandex.ru/info?format=json` with `Authorization: OAuth
        // <token>`; the profile has `id`, `default_email`, `first_name`, `last_name` and no verified
        // flag. The token endpoint takes Basic client authentication.
        ProviderKind::Yandex => Preset {
            authorization_endpoint: Some("https://oauth.yandex.ru/authorize"),
            token_endpoint: Some("https://oauth.yandex.ru/token"),
            userinfo_endpoint: Some("https://login.yandex.ru/info?format=json"),
            presentation: TokenPresentation::OAuthScheme,
            client_auth: ClientAuth::Basic,
            fields: Fields {
                subject: "id",
                email: Some("default_email"),
                email_verified: None,
                first_name: Some("first_name"),
                last_name: Some("last_name"),
            },
            ..BASE
        },
        // VK ID (id.vk.com, the successor of oauth.vk.com): `POST /oauth2/user_info` with `client_id`
        // and `access_token` in the form answers `{"user": {"user_id", "first_name", "last_name",
        // "email", …}}`; its `verified` field is about the profile, not the e-mail. VK ID's code
        // exchange (`/oauth2/auth`) demands PKCE's `code_verifier` and a `device_id`, which a
        // `codeOAuth` cannot carry, so VK clients should send the access token. The exact shape of
        // `user_id` (string or number) is not pinned down by the documentation; both are read.
        ProviderKind::Vk => Preset {
            authorization_endpoint: Some("https://id.vk.com/authorize"),
            token_endpoint: Some("https://id.vk.com/oauth2/auth"),
            userinfo_endpoint: Some("https://id.vk.com/oauth2/user_info"),
            presentation: TokenPresentation::FormPost,
            client_auth: ClientAuth::Post,
            fields: Fields {
                subject: "user.user_id",
                email: Some("user.email"),
                email_verified: None,
                first_name: Some("user.first_name"),
                last_name: Some("user.last_name"),
            },
            ..BASE
        },
        // Mail.ru: `GET https://oauth.mail.ru/userinfo?access_token=<token>` answers `id`, `email`,
        // `first_name`, `last_name`. Whether it also accepts the token as a Bearer header is not
        // documented, so the documented query form is used. Client credentials go in the form body.
        ProviderKind::MailRu => Preset {
            authorization_endpoint: Some("https://oauth.mail.ru/login"),
            token_endpoint: Some("https://oauth.mail.ru/token"),
            userinfo_endpoint: Some("https://oauth.mail.ru/userinfo"),
            presentation: TokenPresentation::Query,
            client_auth: ClientAuth::Post,
            fields: Fields {
                subject: "id",
                email: Some("email"),
                email_verified: None,
                first_name: Some("first_name"),
                last_name: Some("last_name"),
            },
            ..BASE
        },
        // Facebook Graph API: `GET /me?fields=id,email,first_name,last_name`. The address is "the
        // primary e-mail on the profile" and comes without a verified flag. The unversioned URL is
        // served by the oldest version the app may use; pin one by overriding userinfo_endpoint
        // (for example https://graph.facebook.com/v23.0/me?fields=id,email,first_name,last_name).
        // Facebook documents its code exchange as a GET with query parameters; it is made here as a
        // form POST like every other provider's, which the Graph API is known to accept but which
        // that page does not show.
        ProviderKind::Facebook => Preset {
            authorization_endpoint: Some("https://www.facebook.com/dialog/oauth"),
            token_endpoint: Some("https://graph.facebook.com/oauth/access_token"),
            userinfo_endpoint: Some(
                "https://graph.facebook.com/me?fields=id,email,first_name,last_name",
            ),
            presentation: TokenPresentation::Bearer,
            client_auth: ClientAuth::Post,
            fields: Fields {
                subject: "id",
                email: Some("email"),
                email_verified: None,
                first_name: Some("first_name"),
                last_name: Some("last_name"),
            },
            appsecret_proof: true,
            ..BASE
        },
        // GitHub: `GET https://api.github.com/user` gives the numeric `id` and the public e-mail (if
        // any); `GET /user/emails` (scope `user:email`) lists every address with `primary` and
        // `verified`. GitHub has one `name`, not given and family names, so neither is filled in. Its
        // token endpoint answers JSON only when asked with `Accept: application/json`, and answers a
        // bad code with 200 and an `error` field.
        ProviderKind::GitHub => Preset {
            authorization_endpoint: Some("https://github.com/login/oauth/authorize"),
            token_endpoint: Some("https://github.com/login/oauth/access_token"),
            userinfo_endpoint: Some("https://api.github.com/user"),
            presentation: TokenPresentation::Bearer,
            client_auth: ClientAuth::Post,
            fields: Fields {
                subject: "id",
                email: Some("email"),
                email_verified: None,
                first_name: None,
                last_name: None,
            },
            emails_list: true,
            ..BASE
        },
    }
}
