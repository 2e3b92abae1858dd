//! The rules of portal authentication.
