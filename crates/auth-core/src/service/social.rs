//! Social identities (spec §5.4): turning a proof into an identity (remembering an exchanged
//! `codeOAuth` so step 2 may send it again), the identity into a user through the account links, and
//! the token holder's management of their links (`people/thirdparty/…`).

use std::sync::Arc;

use jiff::SignedDuration;

use super::{Core, RequestContext, Session};
use crate::audit::AuditAction;
use crate::crypto::KeyContext;
use crate::error::LinkError;
use crate::later;
use crate::model::User;
use crate::ports::{AccountLink, RememberedCode, SocialError, SocialIdentity};
use crate::service::sign_in::SocialProof;

/// How long an exchanged code's identity is remembered (spec §5.4: step 2 may send it again).
const CODE_MEMORY: SignedDuration = SignedDuration::from_mins(10);

/// Why a proof gave no identity, as the capabilities answer it.
#[derive(Debug)]
pub(crate) enum SocialFailure {
    /// The provider could not be asked: 503 `provider_unavailable`.
    Unavailable(String),
    /// No provider of that name here, no proof, or the proof refused: like a wrong password.
    Refused(String),
    /// Our own store failed (remembering or recalling a code): `busy`, not the provider's fault.
    Store(crate::ports::StoreError),
}

impl From<crate::ports::StoreError> for SocialFailure {
    fn from(e: crate::ports::StoreError) -> Self {
        SocialFailure::Store(e)
    }
}

impl Core {
    /// The identity behind a proof at `provider` (lower-case), which the portal must offer.
    pub(crate) async fn social_identity(
        &self,
        ctx: &RequestContext,
        provider: &str,
        proof: &SocialProof,
    ) -> Result<SocialIdentity, SocialFailure> {
        if !self.social.offered(&ctx.portal).iter().any(|p| p == provider) {
            return Err(SocialFailure::Refused("social provider not offered by the portal".into()));
        }
        let ask = |access, code| self.social.identify(&ctx.portal, provider, access, code);
        let result = match (&proof.access_token, &proof.code_oauth) {
            (Some(token), _) => ask(Some(token), None).await,
            (None, Some(code)) => {
                // A code is exchanged once; what it proved is kept under a keyed hash of it (never
                // the code itself) for a few minutes, for step 2 of a 2FA login.
                let hash = self.key.keyed_hash(
                    KeyContext::OAuthCode,
                    &[provider.as_bytes(), code.expose().as_bytes()],
                );
                let now = self.clock.now();
                if let Some(r) = self.store.recall_code(&hash, now).await? {
                    return Ok(SocialIdentity {
                        subject: r.subject,
                        email: r.email,
                        email_verified: r.email_verified,
                        first_name: None,
                        last_name: None,
                    });
                }
                let identity = match &proof.code_verifier {
                    Some(verifier) => {
                        self.social
                            .identify_code_with_verifier(&ctx.portal, provider, code, verifier)
                            .await
                    }
                    None => ask(None, Some(code)).await,
                };
                if let Ok(id) = &identity {
                    let remembered = RememberedCode {
                        provider: provider.to_owned(),
                        subject: id.subject.clone(),
                        email: id.email.clone(),
                        email_verified: id.email_verified,
                        expires_at: later(now, CODE_MEMORY),
                    };
                    self.store.remember_code(&hash, &remembered).await?;
                }
                identity
            }
            (None, None) => {
                return Err(SocialFailure::Refused("no accessToken or codeOAuth".into()));
            }
        };
        result.map_err(|e| match e {
            SocialError::Unavailable(why) => SocialFailure::Unavailable(why),
            SocialError::Rejected(why) => SocialFailure::Refused(format!("proof refused: {why}")),
            SocialError::UnknownProvider => {
                SocialFailure::Refused("unknown social provider".into())
            }
        })
    }

    /// The user an identity is linked to in the request's portal; or, when the provider allows it
    /// and says the e-mail is verified, the user with that e-mail, linked now.
    pub(crate) async fn linked_user(
        &self,
        ctx: &RequestContext,
        provider: &str,
        identity: &SocialIdentity,
    ) -> Result<Option<User>, crate::ports::StoreError> {
        let portal = ctx.portal.id;
        if let Some(link) = self.store.link_by_subject(portal, provider, &identity.subject).await? {
            return Ok(self.store.user_by_id(link.user).await?.filter(|u| u.portal == portal));
        }
        let by_email = self.social.links_by_verified_email(provider) && identity.email_verified;
        let Some(email) = identity.email.as_deref().filter(|_| by_email) else { return Ok(None) };
        let Some(user) = self.store.user_by_email(portal, &email.to_lowercase()).await? else {
            return Ok(None);
        };
        let link = AccountLink {
            portal,
            provider: provider.to_owned(),
            subject: identity.subject.clone(),
            user: user.id,
            created_at: self.clock.now(),
        };
        // Another request may have linked it meanwhile; either way, the link now decides.
        if self.store.insert_link(&link).await? {
            return Ok(Some(user));
        }
        let link = self.store.link_by_subject(portal, provider, &identity.subject).await?;
        match link {
            Some(l) => Ok(self.store.user_by_id(l.user).await?.filter(|u| u.portal == portal)),
            None => Ok(None),
        }
    }
}

/// One provider of the caller's portal, and whether the caller has linked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderLink {
    /// The provider's configured name.
    pub provider: String,
    /// Whether the caller has a link there.
    pub linked: bool,
}

/// The token holder's account links (`people/thirdparty/…`).
#[derive(Clone)]
pub struct Links {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Links")
    }
}

impl Links {
    /// `POST people/thirdparty/linkaccount`: links the identity behind the proof to the caller.
    pub async fn link(
        &self,
        ctx: &RequestContext,
        session: &Session,
        provider: &str,
        proof: &SocialProof,
    ) -> Result<(), LinkError> {
        let c = &self.core;
        let provider = provider.to_ascii_lowercase();
        let identity = match c.social_identity(ctx, &provider, proof).await {
            Ok(identity) => identity,
            Err(SocialFailure::Unavailable(why)) => {
                return Err(LinkError::ProviderUnavailable(why));
            }
            Err(SocialFailure::Store(e)) => return Err(e.into()),
            Err(SocialFailure::Refused(why)) => {
                let user = Some(session.user.id);
                c.audit(ctx, user, None, AuditAction::LoginFailViaApiSocialAccount, Some(&why))
                    .await?;
                return Err(LinkError::InvalidCredentials);
            }
        };
        let link = AccountLink {
            portal: ctx.portal.id,
            provider: provider.clone(),
            subject: identity.subject.clone(),
            user: session.user.id,
            created_at: c.clock.now(),
        };
        if c.store.insert_link(&link).await? {
            let reason = format!("linked {provider}");
            c.audit(
                ctx,
                Some(session.user.id),
                None,
                AuditAction::SocialAccountLinked,
                Some(&reason),
            )
            .await?;
            return Ok(());
        }
        // Taken: by someone else (409), or this very identity is the caller's already (done).
        match c.store.link_by_subject(ctx.portal.id, &provider, &identity.subject).await? {
            Some(l) if l.user == session.user.id => Ok(()),
            Some(_) => Err(LinkError::AlreadyLinked),
            // The caller has another identity linked at this provider: one link per provider.
            None => Err(LinkError::AlreadyLinked),
        }
    }

    /// `DELETE people/thirdparty/unlinkaccount`: removes the caller's link at `provider`. Needs a
    /// fresh token (spec §5.8), like every change of a way to sign in.
    pub async fn unlink(
        &self,
        ctx: &RequestContext,
        session: &Session,
        provider: &str,
    ) -> Result<bool, LinkError> {
        let c = &self.core;
        let now = c.clock.now();
        if now.duration_since(session.issued_at) > c.limits.fresh_token || now < session.issued_at {
            return Err(LinkError::ReauthenticationRequired);
        }
        let provider = provider.to_ascii_lowercase();
        let removed = c.store.delete_link(session.user.id, &provider).await?;
        if removed {
            let reason = format!("unlinked {provider}");
            c.audit(
                ctx,
                Some(session.user.id),
                None,
                AuditAction::SocialAccountUnlinked,
                Some(&reason),
            )
            .await?;
        }
        Ok(removed)
    }

    /// `GET people/thirdparty/providers`: the portal's providers, and which the caller has linked.
    pub async fn providers(
        &self,
        ctx: &RequestContext,
        session: &Session,
    ) -> Result<Vec<ProviderLink>, LinkError> {
        let c = &self.core;
        let mine = c.store.links_of(session.user.id).await?;
        Ok(c.social
            .offered(&ctx.portal)
            .into_iter()
            .map(|p| ProviderLink { linked: mine.iter().any(|l| l.provider == p), provider: p })
            .collect())
    }
}
