//! Routing by number prefix (`[[sms.routes]]`, spec §12): a number goes to the gateway of the longest
//! configured prefix it starts with, or to the default gateway when none matches.
//!
//! Prefixes are digits of the international number (`1` for the USA and Canada, `7` for Russia and
//! Kazakhstan, `7701` for one Kazakh operator), matched against the stored digits, so `+1 (202) …` and
//! `1202…` route alike. The table is sorted longest first once, at start-up; a lookup is a scan of a
//! handful of entries.

use super::GatewayName;
use super::config::Route;

/// The routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    default: GatewayName,
    /// Longest prefix first, so the first match is the longest.
    by_length: Vec<Route>,
}

impl Routes {
    /// A table over `routes` (prefixes are digits, unique: the configuration checks both).
    pub fn new(default: GatewayName, routes: &[Route]) -> Self {
        let mut by_length = routes.to_vec();
        // Stable, so equal lengths keep the configuration's order (they cannot both match anyway).
        by_length.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Self { default, by_length }
    }

    /// The gateway for the number `to` (its digits).
    pub fn route(&self, to: &str) -> GatewayName {
        self.by_length
            .iter()
            .find(|r| to.starts_with(r.prefix.as_str()))
            .map_or(self.default, |r| r.gateway)
    }

    /// The default gateway.
    pub fn default_gateway(&self) -> GatewayName {
        self.default
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn route(prefix: &str, gateway: GatewayName) -> Route {
        Route { prefix: prefix.to_owned(), gateway }
    }

    fn check(routes: &Routes, cases: &[(&str, GatewayName)]) {
        for (to, want) in cases {
            assert_eq!(routes.route(to), *want, "{to}");
        }
    }

    #[test]
    fn the_longest_prefix_wins_and_the_default_takes_the_rest() {
        // Upstream's arrangement: US numbers through Clickatell's US account, Russia through SMSC,
        // one Kazakh operator through SMS.ru, the rest through Twilio.
        let routes = Routes::new(
            GatewayName::Twilio,
            &[
                route("7", GatewayName::Smsc),
                route("1", GatewayName::ClickatellUsa),
                route("7701", GatewayName::SmsRu),
            ],
        );
        check(
            &routes,
            &[
                ("12025550123", GatewayName::ClickatellUsa),
                ("79123456789", GatewayName::Smsc),
                ("77011234567", GatewayName::SmsRu),
                ("77021234567", GatewayName::Smsc),
                ("447911123456", GatewayName::Twilio),
                ("", GatewayName::Twilio),
            ],
        );
        assert_eq!(Routes::new(GatewayName::File, &[]).route("79123456789"), GatewayName::File);
    }

    fn gateway() -> impl Strategy<Value = GatewayName> {
        prop::sample::select(GatewayName::ALL.iter().map(|(_, g)| *g).collect::<Vec<_>>())
    }

    proptest! {
        /// The table answers what a brute-force search for the longest matching prefix answers, in
        /// whatever order the routes were written.
        #[test]
        fn routing_is_the_longest_matching_prefix(
            table in prop::collection::btree_map("[0-9]{1,4}", gateway(), 0..8),
            default in gateway(),
            tail in "[0-9]{0,11}",
            pick in any::<prop::sample::Index>(),
            after_a_prefix in any::<bool>(),
            reversed in any::<bool>(),
        ) {
            // Half the numbers start with a configured prefix, so nested prefixes ("7", "77") meet.
            let keys: Vec<&String> = table.keys().collect();
            let to = match (after_a_prefix, keys.is_empty()) {
                (true, false) => format!("{}{tail}", keys[pick.index(keys.len())]),
                _ => tail,
            };
            let mut routes: Vec<Route> =
                table.iter().map(|(p, g)| route(p, *g)).collect();
            if reversed {
                routes.reverse();
            }
            let want = table
                .iter()
                .filter(|(p, _)| to.starts_with(p.as_str()))
                .max_by_key(|(p, _)| p.len())
                .map_or(default, |(_, g)| *g);
            prop_assert_eq!(Routes::new(default, &routes).route(&to), want);
        }
    }
}
