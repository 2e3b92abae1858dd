//! Property tests of the throttle: whatever the timing, no window ever admits more than the limit.

use auth_core::ports::CounterStore;
use auth_core::testkit::MemStore;
use auth_core::throttle::{Acquire, Rule};
use auth_core::{SignedDuration, Timestamp};
use proptest::prelude::*;

fn run(rule: Rule, gaps_ms: &[u32], releases: &[bool]) -> Vec<(Timestamp, bool)> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let store = MemStore::new();
        let mut now = Timestamp::constant(1_768_031_184, 0);
        let mut kept = Vec::new();
        for (i, gap) in gaps_ms.iter().enumerate() {
            now = now.saturating_add(SignedDuration::from_millis(i64::from(*gap))).unwrap();
            match store.acquire("k", &rule, now).await.unwrap() {
                Acquire::Granted(slot) => {
                    // Some attempts turn out not to count (a right password): they give their slot back.
                    let release = releases.get(i).copied().unwrap_or(false);
                    if release {
                        store.release(slot).await.unwrap();
                    }
                    kept.push((now, !release));
                }
                Acquire::Refused { until } => {
                    assert!(until > now, "a refusal always names a later time")
                }
            }
        }
        kept
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn never_more_than_the_limit_in_any_window(
        limit in 1u32..8,
        window_s in 1i64..120,
        block_s in 0i64..120,
        gaps in proptest::collection::vec(0u32..20_000, 1..120),
        releases in proptest::collection::vec(any::<bool>(), 0..120),
    ) {
        let rule = Rule::new(limit, SignedDuration::from_secs(window_s), SignedDuration::from_secs(block_s));
        let granted = run(rule, &gaps, &releases);
        let counted: Vec<Timestamp> = granted.iter().filter(|(_, counts)| *counts).map(|(t, _)| *t).collect();
        for (i, start) in counted.iter().enumerate() {
            let end = start.saturating_add(rule.window).unwrap();
            let in_window = counted[i..].iter().take_while(|t| **t < end).count();
            prop_assert!(in_window as u32 <= limit, "{in_window} counted attempts within one window of {window_s}s");
        }
    }

    #[test]
    fn a_quiet_key_is_never_refused(limit in 1u32..8, window_s in 1i64..60) {
        // Attempts spaced a full window apart never reach the limit.
        let rule = Rule::per(limit, SignedDuration::from_secs(window_s));
        let gaps = vec![(window_s * 1000) as u32; 20];
        prop_assert_eq!(run(rule, &gaps, &[]).len(), 20);
    }
}
