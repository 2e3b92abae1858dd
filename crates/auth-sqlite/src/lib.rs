//! The SQLite store adapter (filled by the store issue).
