//! The `auth-server` binary: parses the command line and hands over to the library.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("auth-server: the server is not built yet")
}
