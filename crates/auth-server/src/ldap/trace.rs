//! The steps of a directory login, recorded for `auth-server ldap test`, which must say which step
//! failed; a login through the API records nothing (`Trace::off`).
//!
//! A step's detail names DNs, URLs and result codes, never a password.

/// One step of a login or a sync, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Connecting to the directory (with TLS) for the service account.
    Connect,
    /// Binding as the service account.
    ServiceBind,
    /// Searching for the login.
    Search,
    /// Connecting again, for the user's own bind.
    UserConnect,
    /// Binding as the user with the given password.
    UserBind,
    /// The group membership check.
    Group,
    /// The directory's "disabled" flag.
    Disabled,
}

impl Step {
    /// The step's name as `ldap test` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::ServiceBind => "service bind",
            Step::Search => "search",
            Step::UserConnect => "user connect",
            Step::UserBind => "user bind",
            Step::Group => "group",
            Step::Disabled => "disabled",
        }
    }
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// Whether it passed.
    pub ok: bool,
    /// What it found or why it failed.
    pub detail: String,
}

/// Where steps are recorded, if anywhere.
#[derive(Debug, Default)]
pub struct Trace(Option<Vec<StepReport>>);

impl Trace {
    /// Records nothing (a login through the API).
    pub fn off() -> Self {
        Self(None)
    }

    /// Records every step.
    pub fn on() -> Self {
        Self(Some(Vec::new()))
    }

    pub(super) fn ok(&mut self, step: Step, detail: &str) {
        self.push(step, true, detail);
    }

    pub(super) fn fail(&mut self, step: Step, detail: &str) {
        self.push(step, false, detail);
    }

    fn push(&mut self, step: Step, ok: bool, detail: &str) {
        if let Some(steps) = &mut self.0 {
            steps.push(StepReport { step, ok, detail: detail.to_owned() });
        }
    }

    /// The recorded steps.
    pub fn into_steps(self) -> Vec<StepReport> {
        self.0.unwrap_or_default()
    }
}
