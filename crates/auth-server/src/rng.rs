//! The operating system's random generator behind auth-core's `Rng` port.
//!
//! Codes, tokens, salts and TOTP secrets all come from here, so it must be a CSPRNG: `getrandom` reads
//! the kernel's generator (`getrandom(2)` on Linux) with no user-space state to seed or fork.

use auth_core::ports::Rng;

/// The kernel's CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRng;

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        // The port cannot fail, and continuing with predictable bytes would mint guessable tokens, so
        // an unusable kernel generator (which never happens on a supported system) stops the process.
        if let Err(e) = getrandom::fill(buf) {
            tracing::error!(error = %e, "the operating system's random generator failed");
            std::process::abort();
        }
    }
}

/// `N` bytes from the kernel's CSPRNG, as an error instead of an abort (for startup code).
pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| anyhow::anyhow!("the operating system's random generator failed: {e}"))?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_with_varying_bytes() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        OsRng.fill(&mut a);
        OsRng.fill(&mut b);
        assert_ne!(a, b);
        assert_ne!(random_bytes::<16>().unwrap(), [0u8; 16]);
    }
}
