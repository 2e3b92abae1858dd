//! The hyper transport of the authentication service (filled by the server issue).
