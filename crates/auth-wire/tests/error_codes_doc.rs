//! `docs/error-codes.md` is generated from `ErrorCode::ALL`; this test fails when the two drift.
//!
//! Run with `UPDATE_DOCS=1` to rewrite the file after changing the set of codes.

use auth_wire::ErrorCode;

fn generate() -> String {
    let mut out = String::from(
        "# Error codes\n\n\
         Generated from `auth_wire::ErrorCode` by `crates/auth-wire/tests/error_codes_doc.rs` (run it with `UPDATE_DOCS=1` to refresh).\n\
         Every error envelope carries one of these `code` strings; the set is closed and a code is never renamed.\n\
         Clients should match on `code`; `message` is human text (upstream's English where one exists).\n\n\
         | `code` | HTTP | default `message` |\n|---|---|---|\n",
    );
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.status_code(),
            code.default_message()
        ));
    }
    out
}

#[test]
fn error_codes_doc_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/error-codes.md");
    let want = generate();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        have, want,
        "docs/error-codes.md is stale: run `UPDATE_DOCS=1 cargo test -p auth-wire --test error_codes_doc`"
    );
}
