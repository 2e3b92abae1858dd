//! `cargo xtask`: the project's automation, so CI and developers run the same commands.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("xtask: no command yet")
}
