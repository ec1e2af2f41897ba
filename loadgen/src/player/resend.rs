//! Acts a player may have to send again: the frames of its recent acts,
//! and, for those the server refused with a temporary answer
//! (`unavailable`, `unknown_outcome`), when the next attempt is due — the
//! same frame (same id, stamp and key), after a doubling wait.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Acts kept ready to resend; older ones are given up.
const MAX_KEPT: usize = 64;

/// An act that can be sent again, and when it will be if it has to.
struct Resend {
    id: u64,
    frame: String,
    tries: u32,
    due: Option<Instant>,
}

/// How refused acts are resent (from the scenario's behaviour).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub tries: u32,
    pub first_wait: Duration,
    pub max_wait: Duration,
}

/// A player's resendable acts (empty unless its policy allows tries).
#[derive(Default)]
pub struct Resends {
    kept: VecDeque<Resend>,
}

impl Resends {
    /// Keeps act `id`'s frame; bounded, so a server that never answers
    /// does not grow it.
    pub fn keep(&mut self, id: u64, frame: &str) {
        self.kept.push_back(Resend {
            id,
            frame: frame.to_owned(),
            tries: 0,
            due: None,
        });
        while self.kept.len() > MAX_KEPT {
            self.kept.pop_front();
        }
    }

    /// Act `id` was acknowledged: it will not be sent again.
    pub fn acked(&mut self, id: u64) {
        self.kept.retain(|r| r.id != id);
    }

    /// Plans the resend of act `id` after a refusal with `code`; false when
    /// it will not be resent (a final answer, unknown, or out of tries).
    pub fn plan(&mut self, id: u64, code: &str, policy: Policy, now: Instant) -> bool {
        if !matches!(code, "unavailable" | "unknown_outcome") {
            return false;
        }
        let Some(at) = self.kept.iter().position(|r| r.id == id) else {
            return false;
        };
        let resend = &mut self.kept[at];
        if resend.tries >= policy.tries {
            self.kept.remove(at);
            return false;
        }
        let wait = policy
            .first_wait
            .saturating_mul(1 << resend.tries.min(16))
            .min(policy.max_wait);
        resend.tries += 1;
        resend.due = Some(now + wait);
        true
    }

    /// Resolves when the first planned resend is due (never, if none is).
    pub async fn due(&self) {
        match self.kept.iter().filter_map(|r| r.due).min() {
            Some(due) => tokio::time::sleep_until(due).await,
            None => std::future::pending().await,
        }
    }

    /// The frame of the act whose resend is due first, if one is.
    pub fn take_due(&mut self, now: Instant) -> Option<String> {
        let next = self
            .kept
            .iter_mut()
            .filter(|r| r.due.is_some_and(|due| due <= now))
            .min_by_key(|r| r.due)?;
        next.due = None;
        Some(next.frame.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        tries: 2,
        first_wait: Duration::from_millis(100),
        max_wait: Duration::from_millis(150),
    };

    #[test]
    fn a_refused_act_is_resent_after_a_doubling_wait_until_out_of_tries() {
        let t0 = Instant::now();
        let mut resends = Resends::default();
        resends.keep(7, "act 7");
        assert!(!resends.plan(7, "room_full", POLICY, t0), "a final answer");
        assert!(resends.plan(7, "unknown_outcome", POLICY, t0));
        assert_eq!(resends.take_due(t0), None, "not yet");
        let first = t0 + Duration::from_millis(100);
        assert_eq!(resends.take_due(first).as_deref(), Some("act 7"));
        assert_eq!(resends.take_due(first), None, "sent once per plan");
        assert!(resends.plan(7, "unavailable", POLICY, first));
        // Twice the first wait, capped at the longest.
        assert_eq!(resends.take_due(first + Duration::from_millis(149)), None);
        assert!(resends
            .take_due(first + Duration::from_millis(150))
            .is_some());
        assert!(
            !resends.plan(7, "unavailable", POLICY, first),
            "out of tries"
        );
        assert!(!resends.plan(7, "unavailable", POLICY, first), "forgotten");
    }

    #[test]
    fn acked_acts_and_old_ones_are_not_kept() {
        let t0 = Instant::now();
        let mut resends = Resends::default();
        for id in 0..=MAX_KEPT as u64 {
            resends.keep(id, "act");
        }
        assert!(
            !resends.plan(0, "unavailable", POLICY, t0),
            "the oldest went"
        );
        resends.acked(5);
        assert!(!resends.plan(5, "unavailable", POLICY, t0));
        assert!(resends.plan(6, "unavailable", POLICY, t0));
    }
}
