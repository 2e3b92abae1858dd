//! The one integration-test binary; each module covers one surface of the running server.
