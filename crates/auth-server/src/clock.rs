//! The wall clock: the one place in the workspace's server that reads the system time.
//!
//! auth-core takes time only through its `Clock` port, so every rule can be tested with a fake clock;
//! this adapter is what the real server plugs in.

use auth_core::Timestamp;
use auth_core::ports::Clock;

/// The system's real-time clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
