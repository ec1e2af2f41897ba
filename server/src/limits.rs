//! Guards against abusive clients: a token-bucket rate limit, a strike
//! counter that decides when rejected frames amount to abuse, and buckets
//! per key: per peer address for what a client can do without a connection
//! of its own (REST room creation and lookups), per session for the bytes
//! its resumes replay.
//!
//! Both are pure and take the current instant as an argument so that tests can
//! drive time by hand.

use std::time::{Duration, Instant};

/// Classic token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.tokens = self.refilled(now);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens, going into debt if there are fewer: how long the
    /// caller waits before using them, so that a stream of takes keeps to
    /// `rate` after the burst.
    pub fn pace(&mut self, n: f64, now: Instant) -> Duration {
        self.tokens = self.refilled(now) - n;
        self.last = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Counts rejected frames in a sliding window; `strike` says when the limit is
/// reached. A client that makes an occasional mistake is never closed.
#[derive(Debug, Clone)]
pub struct Strikes {
    limit: u32,
    window: Duration,
    times: std::collections::VecDeque<Instant>,
}

pub const STRIKE_WINDOW: Duration = Duration::from_secs(10);

impl Strikes {
    pub fn new(limit: u32) -> Strikes {
        Strikes {
            limit,
            window: STRIKE_WINDOW,
            times: std::collections::VecDeque::new(),
        }
    }

    /// Records one rejected frame; true when the client has now earned a close.
    pub fn strike(&mut self, now: Instant) -> bool {
        while self
            .times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > self.window)
        {
            self.times.pop_front();
        }
        self.times.push_back(now);
        self.times.len() >= self.limit as usize
    }
}

/// Keys whose buckets are kept; past it, full buckets are forgotten first,
/// then all (a flood of addresses or sessions must not grow the map without
/// bound).
const MAX_KEYS: usize = 16_384;

/// One token bucket per key.
#[derive(Debug)]
pub struct PerKey<K> {
    rate: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<K, TokenBucket>>,
}

/// Buckets per peer address.
pub type PerPeer = PerKey<std::net::IpAddr>;

impl<K: std::hash::Hash + Eq> PerKey<K> {
    pub fn new(rate: f64, burst: f64) -> PerKey<K> {
        PerKey {
            rate,
            burst,
            buckets: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Runs `f` on `key`'s bucket, making room for it first.
    fn with<T>(&self, key: K, now: Instant, f: impl FnOnce(&mut TokenBucket) -> T) -> T {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        f(buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(self.rate, self.burst, now)))
    }

    /// Takes a token from `key`'s bucket.
    pub fn try_take(&self, key: K, now: Instant) -> bool {
        self.with(key, now, |bucket| bucket.try_take(now))
    }

    /// Takes `n` tokens from `key`'s bucket: how long to wait first.
    pub fn pace(&self, key: K, n: f64, now: Instant) -> Duration {
        self.with(key, now, |bucket| bucket.pace(n, now))
    }

    /// Whether `key` has a token left, without taking it.
    pub fn has_token(&self, key: &K, now: Instant) -> bool {
        let buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buckets.get(key).is_none_or(|b| b.refilled(now) >= 1.0)
    }
}

impl TokenBucket {
    fn refilled(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.burst)
    }

    fn is_full(&self, now: Instant) -> bool {
        self.refilled(now) >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 5.0, t0);
        assert_eq!((0..8).filter(|_| bucket.try_take(t0)).count(), 5);
        // 0.25 s later, 2.5 tokens have come back: two frames pass.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!((0..8).filter(|_| bucket.try_take(t1)).count(), 2);
        // Refill never exceeds the burst.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..20).filter(|_| bucket.try_take(t2)).count(), 5);
    }

    #[test]
    fn peers_have_their_own_buckets() {
        let t0 = Instant::now();
        let peers = PerPeer::new(1.0, 2.0);
        let (a, b) = ([127, 0, 0, 1].into(), [127, 0, 0, 2].into());
        assert!(peers.try_take(a, t0) && peers.try_take(a, t0));
        assert!(!peers.try_take(a, t0) && !peers.has_token(&a, t0));
        assert!(peers.has_token(&b, t0) && peers.try_take(b, t0));
        assert!(peers.has_token(&a, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn pacing_spends_the_burst_then_keeps_to_the_rate() {
        let t0 = Instant::now();
        let sessions = PerKey::new(1000.0, 4000.0);
        assert_eq!(sessions.pace("s1", 4000.0, t0), Duration::ZERO);
        // The burst is spent: 2,000 more bytes wait 2 s, the next 1,000 3 s.
        assert_eq!(sessions.pace("s1", 2000.0, t0), Duration::from_secs(2));
        assert_eq!(sessions.pace("s1", 1000.0, t0), Duration::from_secs(3));
        // Another session has its own burst.
        assert_eq!(sessions.pace("s2", 4000.0, t0), Duration::ZERO);
    }

    #[test]
    fn strikes_close_only_when_dense() {
        let t0 = Instant::now();
        let mut strikes = Strikes::new(3);
        assert!(!strikes.strike(t0));
        assert!(!strikes.strike(t0 + Duration::from_secs(11)));
        assert!(!strikes.strike(t0 + Duration::from_secs(12)));
        assert!(strikes.strike(t0 + Duration::from_secs(13)));
    }
}
