//! The per-requester limit on Map-Requests the Map-Resolver answers: a flood from one ITR must
//! not starve the others (what it refuses is counted in `show lisp statistics`).

use std::net::IpAddr;

/// Map-Requests answered per requester (ITR address): a token bucket per address, refilled at
/// [`RequestLimit::PER_SECOND`]; the table of requesters is bounded (cleared when full).
#[derive(Debug, Default)]
pub struct RequestLimit {
    buckets: std::collections::HashMap<IpAddr, (u64, u64)>,
    pub refused: u64,
}

impl RequestLimit {
    pub const PER_SECOND: u64 = 2_000;
    pub const MAX_REQUESTERS: usize = 16_384;

    /// Whether a Map-Request from `from` at `now_ms` is answered; a refusal is counted.
    pub fn allow(&mut self, from: IpAddr, now_ms: u64) -> bool {
        if self.buckets.len() >= Self::MAX_REQUESTERS && !self.buckets.contains_key(&from) {
            self.buckets.clear();
        }
        let (tokens, last) = self
            .buckets
            .entry(from)
            .or_insert((Self::PER_SECOND, now_ms));
        let refill = now_ms.saturating_sub(*last) * Self::PER_SECOND / 1000;
        if refill > 0 {
            *tokens = (*tokens + refill).min(Self::PER_SECOND);
            *last = now_ms;
        }
        if *tokens == 0 {
            self.refused += 1;
            return false;
        }
        *tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::RequestLimit;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn each_requester_gets_its_share_of_answers_per_second() {
        let mut l = RequestLimit::default();
        let (a, b) = (
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        );
        let first_second = (0..5_000).filter(|_| l.allow(a, 0)).count() as u64;
        assert_eq!(first_second, RequestLimit::PER_SECOND);
        assert!(l.allow(b, 0), "another requester is not affected");
        assert!(!l.allow(a, 0));
        assert!(l.allow(a, 10), "refilled with time");
        assert_eq!(l.refused, 5_000 - RequestLimit::PER_SECOND + 1);
    }
}
