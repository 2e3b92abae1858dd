//! The composition root of the `auth-server` binary (filled by the server issue).
