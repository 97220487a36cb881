//! What a run did: referrals answered, deferred, left to an agent; notices handled; messages terminated.

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub accepted: u64,
    pub declined: u64,
    /// Withdrawals and reminders handled.
    pub notices: u64,
    /// Referrals left for later (the handler had no answer yet).
    pub deferred: u64,
    /// Messages that were not referrals (undecodable, no id): terminated, never redelivered.
    pub terminated: u64,
    /// Accepts of offers priced on quote with no amount to state: acknowledged unanswered, for an agent.
    pub left_to_agent: u64,
}

impl Summary {
    /// Referrals answered (and acknowledged).
    pub fn answered(&self) -> u64 {
        self.accepted + self.declined
    }
}
