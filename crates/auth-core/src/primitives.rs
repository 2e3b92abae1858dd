//! Time and randomness: the two ports every rule needs, kept apart from the store and gateway ports so
//! that the low-level modules (`crypto`, `token`, `sms`, `totp`, `backup`, `password`) need nothing else.

use jiff::Timestamp;

/// The only source of time in the core.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The only source of randomness in the core; MUST be a CSPRNG in production.
pub trait Rng: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Helpers on top of [`Rng`].
pub trait RngExt {
    /// `N` random bytes.
    fn bytes<const N: usize>(&self) -> [u8; N];
    /// A uniform number in `0..n` (rejection sampling, no modulo bias). `n` must be positive.
    fn below(&self, n: u32) -> u32;
}

impl<R: Rng + ?Sized> RngExt for R {
    fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }

    fn below(&self, n: u32) -> u32 {
        let n = n.max(1);
        // Accept only values below the largest multiple of n, so every residue is equally likely.
        let zone = u32::MAX - (u32::MAX % n);
        loop {
            let v = u32::from_le_bytes(self.bytes::<4>());
            if v < zone {
                return v % n;
            }
        }
    }
}
