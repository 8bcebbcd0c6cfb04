//! Retry tokens: how a listener under a connect flood checks a starter's
//! address without keeping state for it.
//!
//! A token is the time it was issued (whole seconds since the endpoint first
//! issued one, 4 bytes big-endian) followed by an HMAC-SHA256 over that time,
//! the starter's address and the session id, under a key the endpoint drew
//! at random and never shares. Only the endpoint can make one; a token is
//! good for one address and one session, for a bounded time. The format is
//! the listener's own business: a starter only echoes it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ring::hmac;

use crate::id::SessionId;

const ISSUED_LEN: usize = 4;
/// Bytes of a token: the issue time and the full tag.
pub(crate) const TOKEN_LEN: usize = ISSUED_LEN + 32;

/// Issues and checks retry tokens.
pub(crate) struct RetryTokens {
    key: hmac::Key,
    /// The instant tokens count their seconds from: the first issue's.
    epoch: Option<Instant>,
}

impl std::fmt::Debug for RetryTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the key.
        f.debug_struct("RetryTokens")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl RetryTokens {
    /// Tokens under `key`, which must be random and secret.
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            epoch: None,
        }
    }

    fn message(issued: [u8; ISSUED_LEN], addr: SocketAddr, id: SessionId) -> Vec<u8> {
        let mut m = Vec::with_capacity(ISSUED_LEN + 16 + 2 + 8);
        m.extend_from_slice(&issued);
        match addr {
            SocketAddr::V4(a) => m.extend_from_slice(&a.ip().octets()),
            SocketAddr::V6(a) => m.extend_from_slice(&a.ip().octets()),
        }
        m.extend_from_slice(&addr.port().to_be_bytes());
        m.extend_from_slice(&id.0);
        m
    }

    fn seconds(&self, now: Instant) -> u32 {
        let since = self
            .epoch
            .map_or(Duration::ZERO, |e| now.saturating_duration_since(e));
        u32::try_from(since.as_secs()).unwrap_or(u32::MAX)
    }

    /// A token for `addr` opening session `id`.
    pub(crate) fn issue(&mut self, now: Instant, addr: SocketAddr, id: SessionId) -> Bytes {
        self.epoch.get_or_insert(now);
        let issued = self.seconds(now).to_be_bytes();
        let tag = hmac::sign(&self.key, &Self::message(issued, addr, id));
        let mut token = Vec::with_capacity(TOKEN_LEN);
        token.extend_from_slice(&issued);
        token.extend_from_slice(tag.as_ref());
        Bytes::from(token)
    }

    /// Whether `token` was issued by this endpoint to `addr` for session `id`
    /// no longer than `lifetime` ago (to the second).
    pub(crate) fn check(
        &self,
        now: Instant,
        addr: SocketAddr,
        id: SessionId,
        token: &[u8],
        lifetime: Duration,
    ) -> bool {
        if token.len() != TOKEN_LEN || self.epoch.is_none() {
            return false;
        }
        let (issued, tag) = token.split_at(ISSUED_LEN);
        let issued: [u8; ISSUED_LEN] = issued.try_into().expect("split at ISSUED_LEN");
        if hmac::verify(&self.key, &Self::message(issued, addr, id), tag).is_err() {
            return false;
        }
        let age = self.seconds(now).checked_sub(u32::from_be_bytes(issued));
        age.is_some_and(|age| u64::from(age) <= lifetime.as_secs() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(10);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_token_is_good_for_its_address_session_and_lifetime_only() {
        let t0 = crate::test_support::epoch();
        let mut tokens = RetryTokens::new([7; 32]);
        let a = addr("192.0.2.1:4000");
        let id = SessionId::from(5);
        let token = tokens.issue(t0, a, id);
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(tokens.check(t0, a, id, &token, LIFETIME));
        assert!(tokens.check(t0 + LIFETIME, a, id, &token, LIFETIME));
        assert!(!tokens.check(t0 + 3 * LIFETIME, a, id, &token, LIFETIME));
        assert!(!tokens.check(t0, addr("192.0.2.1:4001"), id, &token, LIFETIME));
        assert!(!tokens.check(t0, addr("192.0.2.2:4000"), id, &token, LIFETIME));
        assert!(!tokens.check(t0, a, SessionId::from(6), &token, LIFETIME));
        assert!(!tokens.check(t0, a, id, &token[1..], LIFETIME));
        for i in 0..token.len() {
            let mut forged = token.to_vec();
            forged[i] ^= 1;
            assert!(!tokens.check(t0, a, id, &forged, LIFETIME), "byte {i}");
        }
    }

    #[test]
    fn another_endpoints_tokens_are_refused() {
        let t0 = crate::test_support::epoch();
        let mut ours = RetryTokens::new([1; 32]);
        let mut theirs = RetryTokens::new([2; 32]);
        let a = addr("[2001:db8::1]:9");
        let id = SessionId::from(1);
        ours.issue(t0, a, id);
        let token = theirs.issue(t0, a, id);
        assert!(!ours.check(t0, a, id, &token, LIFETIME));
    }
}
