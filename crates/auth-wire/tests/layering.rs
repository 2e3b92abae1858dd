//! The crate must stay usable by clients alone: its normal dependency tree holds none of our crates and no
//! async runtime or HTTP stack (API.md's layering, the wire issue's acceptance check).

use std::process::Command;

#[test]
fn normal_dependency_tree_has_no_core_tokio_or_hyper() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "auth-wire",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
            "--all-features",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).unwrap();
    for line in tree.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        for banned in
            ["auth-core", "auth-http", "auth-sqlite", "auth-server", "tokio", "hyper", "hyper-util"]
        {
            assert_ne!(name, banned, "auth-wire must not depend on {banned}:\n{tree}");
        }
    }
    assert!(tree.contains("quick-xml"), "unexpected `cargo tree` output:\n{tree}");
}
