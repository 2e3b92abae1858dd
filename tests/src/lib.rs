//! Harness for the black-box integration tests: starts the real server and talks HTTP to it.
