//! The sliding-window rate limit, as a pure algorithm.
//!
//! A sliding log: the instants of the allowed requests within the last window. It is exact (no
//! bucket boundary lets a client send twice its budget), and its memory is bounded by the
//! budget per client. The memory adapter and the Worker's per-isolate limiter run it as is;
//! the Redis adapter runs the same algorithm server-side over a sorted set.

use crate::{RateDecision, RateLimit, UnixMillis};
use std::collections::VecDeque;

/// One client's recent allowed requests.
///
/// Most clients make one or two requests in a window, so their instants are kept inline and
/// a new client costs no allocation; a busier one moves to a queue.
#[derive(Debug, Clone, Default)]
pub struct WindowLog {
    hits: Hits,
}

#[derive(Debug, Clone)]
enum Hits {
    /// Up to two instants, oldest first.
    Inline {
        len: u8,
        at: [UnixMillis; 2],
    },
    Queue(VecDeque<UnixMillis>),
}

impl Default for Hits {
    fn default() -> Self {
        Hits::Inline { len: 0, at: [0; 2] }
    }
}

impl Hits {
    fn front(&self) -> Option<UnixMillis> {
        match self {
            Hits::Inline { len: 0, .. } => None,
            Hits::Inline { at, .. } => Some(at[0]),
            Hits::Queue(q) => q.front().copied(),
        }
    }

    fn back(&self) -> Option<UnixMillis> {
        match self {
            Hits::Inline { len: 0, .. } => None,
            Hits::Inline { len, at } => Some(at[usize::from(*len) - 1]),
            Hits::Queue(q) => q.back().copied(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Hits::Inline { len, .. } => usize::from(*len),
            Hits::Queue(q) => q.len(),
        }
    }

    fn pop_front(&mut self) {
        match self {
            Hits::Inline { len: 0, .. } => {}
            Hits::Inline { len, at } => {
                at[0] = at[1];
                *len -= 1;
            }
            Hits::Queue(q) => {
                q.pop_front();
            }
        }
    }

    fn push_back(&mut self, t: UnixMillis) {
        match self {
            Hits::Inline { len, at } if usize::from(*len) < at.len() => {
                at[usize::from(*len)] = t;
                *len += 1;
            }
            Hits::Inline { at, .. } => {
                let mut q = VecDeque::with_capacity(4);
                q.extend(at.iter().copied());
                q.push_back(t);
                *self = Hits::Queue(q);
            }
            Hits::Queue(q) => q.push_back(t),
        }
    }
}

impl WindowLog {
    /// The log of one allowed request at `at`: how a store that keeps most clients in less
    /// room (the memory limiter: one instant, not a whole log) hands one back to the rule.
    pub fn one(at: UnixMillis) -> Self {
        WindowLog { hits: Hits::Inline { len: 1, at: [at, 0] } }
    }

    /// The instant of its only request, when it holds exactly one.
    pub fn only(&self) -> Option<UnixMillis> {
        match self.hits {
            Hits::Inline { len: 1, at } => Some(at[0]),
            Hits::Queue(ref q) if q.len() == 1 => q.front().copied(),
            _ => None,
        }
    }

    /// Counts a request at `now` against `limit`.
    pub fn hit(&mut self, now: UnixMillis, limit: RateLimit) -> RateDecision {
        let window = limit.window_ms();
        while self.hits.front().is_some_and(|t| t.saturating_add(window) <= now) {
            self.hits.pop_front();
        }
        if self.hits.len() >= limit.max() as usize {
            let oldest = self.hits.front().unwrap_or(now);
            return RateDecision::Limited { retry_after_ms: Some(oldest.saturating_add(window).saturating_sub(now)) };
        }
        self.hits.push_back(now);
        RateDecision::Allowed
    }

    /// True when no request of this log still counts at `now`, so the log can be dropped.
    pub fn is_idle(&self, now: UnixMillis, limit: RateLimit) -> bool {
        self.hits.back().is_none_or(|t| t.saturating_add(limit.window_ms()) <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = match RateLimit::of(3, 10) {
        Some(l) => l,
        None => unreachable!(),
    };

    fn limited(ms: u64) -> RateDecision {
        RateDecision::Limited { retry_after_ms: Some(ms) }
    }

    #[test]
    fn allows_the_budget_then_limits_until_the_oldest_hit_leaves() {
        let mut log = WindowLog::default();
        for t in [0, 1000, 2000] {
            assert_eq!(log.hit(t, LIMIT), RateDecision::Allowed);
        }
        // The oldest hit (t=0) leaves the window at t=10_000: 7.5 s away.
        assert_eq!(log.hit(2500, LIMIT), limited(7500));
    }

    #[test]
    fn the_window_slides_rather_than_resetting() {
        let mut log = WindowLog::default();
        for t in [0, 5000, 9000] {
            log.hit(t, LIMIT);
        }
        assert_eq!(log.hit(10_000, LIMIT), RateDecision::Allowed); // t=0 slid out
        assert_eq!(log.hit(10_001, LIMIT), limited(4999));
    }

    #[test]
    fn limited_requests_do_not_count() {
        let mut log = WindowLog::default();
        for t in 0..3 {
            log.hit(t, LIMIT);
        }
        for t in 3..100 {
            assert!(matches!(log.hit(t, LIMIT), RateDecision::Limited { .. }));
        }
        assert_eq!(log.hit(10_000, LIMIT), RateDecision::Allowed);
    }

    #[test]
    fn idle_once_the_newest_hit_left_the_window() {
        let mut log = WindowLog::default();
        log.hit(0, LIMIT);
        assert!(!log.is_idle(9_999, LIMIT));
        assert!(log.is_idle(10_000, LIMIT));
    }

    #[test]
    fn a_log_of_one_is_the_log_that_one_hit_leaves() {
        let mut log = WindowLog::default();
        assert_eq!(log.only(), None);
        log.hit(7, LIMIT);
        assert_eq!(log.only(), Some(7));
        let mut one = WindowLog::one(7);
        for t in [8, 9] {
            assert_eq!(one.hit(t, LIMIT), log.hit(t, LIMIT));
        }
        assert_eq!(one.only(), None);
        assert_eq!(one.hit(10, LIMIT), limited(9_997));
        // The first two leave the window, which leaves room for two more.
        assert_eq!(one.hit(10_008, LIMIT), RateDecision::Allowed);
        assert_eq!(one.hit(10_008, LIMIT), RateDecision::Allowed);
        assert_eq!(one.hit(10_008, LIMIT), limited(1));
    }

    /// The inline start and the queue it moves to agree with a plain list of instants, for
    /// budgets on both sides of the inline size, on a pseudo-random stream of requests.
    #[test]
    fn agrees_with_a_plain_list_across_the_inline_boundary() {
        for max in 1..=6 {
            let limit = RateLimit::of(max, 1).unwrap();
            let (mut log, mut plain): (WindowLog, Vec<UnixMillis>) = (WindowLog::default(), Vec::new());
            let (mut now, mut seed) = (0u64, 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(max));
            for _ in 0..5_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                now += seed % 400;
                plain.retain(|&t| t + 1000 > now);
                let expected = if plain.len() >= max as usize {
                    RateDecision::Limited { retry_after_ms: Some(plain[0] + 1000 - now) }
                } else {
                    plain.push(now);
                    RateDecision::Allowed
                };
                assert_eq!(log.hit(now, limit), expected, "max {max} at {now}");
                assert!(log.is_idle(now + 1000, limit));
            }
        }
    }
}
