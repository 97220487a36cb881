//! Recent search results, so that a popular search goes neither to PostgreSQL nor through filtering and facets
//! on every call, and the searching members' profiles ("eligible for my collectivité").

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use id77_proto::catalogue::v1 as pb;
use uuid::Uuid;

use crate::domain::MemberProfile;
use crate::search::Hit;
use crate::store::SearchRow;

/// How long a search's match set is reused. Writes through this replica invalidate at once; another
/// replica's writes are seen after at most this long.
pub const SEARCH_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most distinct queries kept (the cache is cleared when full).
const SEARCH_CACHE_ENTRIES: usize = 1024;

/// When a result was computed, under which catalogue generation, and the result.
type Entry<V> = (Instant, u64, Arc<V>);

/// Recent results by key.
pub(super) struct Recent<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: std::hash::Hash + Eq, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: std::hash::Hash + Eq, V> Recent<K, V> {
    pub(super) fn get(&self, key: &K, generation: u64) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        let (at, entry_generation, value) = entries.get(key)?;
        (*entry_generation == generation && at.elapsed() < SEARCH_CACHE_TTL).then(|| value.clone())
    }

    pub(super) fn put(&self, key: K, generation: u64, value: Arc<V>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SEARCH_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), generation, value));
        }
    }
}

/// The published offers matching some words: the rows (for the answer) and, in the same order, what filters
/// and facets read of them (built once per match set rather than on every search).
pub(super) struct Matches {
    pub(super) rows: Vec<SearchRow>,
    pub(super) hits: Vec<Hit>,
}

/// Match sets by words (shared by every filter and page), and whole answers by request (not for "eligible",
/// which depends on the caller).
#[derive(Default)]
pub(super) struct SearchCache {
    /// Bumped after each committed write that search can see; entries of an older generation are stale.
    generation: AtomicU64,
    pub(super) matches: Recent<Vec<String>, Matches>,
    pub(super) answers: Recent<Vec<u8>, pb::SearchOffersResponse>,
}

impl SearchCache {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// After a committed write that search can see.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Most members whose profile is kept (more than the département's collectivités; cleared of what can go when
/// full).
const MEMBER_CACHE_ENTRIES: usize = 4096;

/// What is known of one member.
enum Slot {
    /// Read from PostgreSQL at this instant: the profile of an active member, `None` for an unknown or inactive
    /// one (so that a refused caller does not reach PostgreSQL on every call either).
    Known(Instant, Option<MemberProfile>),
    /// This replica applied one of the member's events at this instant, maybe not committed yet: what is read
    /// until [`SEARCH_CACHE_TTL`] later is not kept (it may be the row before the commit).
    Changed(Instant),
}

/// The members' eligibility profiles, so that "eligible for my collectivité" does not read the member row in
/// PostgreSQL on every search. A profile is kept at most [`SEARCH_CACHE_TTL`] (another replica's member events
/// are seen after at most that long) and dropped at once when this replica's member consumer applies one of
/// the member's events ([`MemberProfiles::changed`], called inside the event's transaction: the consumer gives
/// no hook after its commit, hence the [`Slot::Changed`] window and the change counter).
#[derive(Default)]
pub struct MemberProfiles {
    /// Member events applied by this replica; a read that saw it move is not kept.
    changes: AtomicU64,
    entries: Mutex<HashMap<Uuid, Slot>>,
}

impl MemberProfiles {
    /// The member's profile (`Some(None)`: known as not active), if read recently and unchanged since.
    pub(super) fn get(&self, member_id: Uuid) -> Option<Option<MemberProfile>> {
        let entries = self.entries.lock().ok()?;
        match entries.get(&member_id)? {
            Slot::Known(at, profile) if at.elapsed() < SEARCH_CACHE_TTL => Some(profile.clone()),
            _ => None,
        }
    }

    /// To read before PostgreSQL, and give back to [`MemberProfiles::put`].
    pub(super) fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Keeps what was read, unless a member event was applied since `changes` was read, or this member's
    /// latest event may not be committed yet.
    pub(super) fn put(&self, member_id: Uuid, changes: u64, profile: Option<MemberProfile>) {
        let Ok(mut entries) = self.entries.lock() else { return };
        // Under the lock: `changed` bumps the counter under it too, so no event slips between check and insert.
        if self.changes() != changes {
            return;
        }
        if let Some(Slot::Changed(at)) = entries.get(&member_id)
            && at.elapsed() < SEARCH_CACHE_TTL
        {
            return;
        }
        if entries.len() >= MEMBER_CACHE_ENTRIES {
            make_room(&mut entries);
            if entries.len() >= MEMBER_CACHE_ENTRIES {
                return;
            }
        }
        entries.insert(member_id, Slot::Known(Instant::now(), profile));
    }

    /// This replica is applying an event of the member: its profile is read again from the next search on.
    pub fn changed(&self, member_id: Uuid) {
        let Ok(mut entries) = self.entries.lock() else {
            // A poisoned lock: `get` and `put` fail too, so nothing is served from the cache.
            self.changes.fetch_add(1, Ordering::AcqRel);
            return;
        };
        self.changes.fetch_add(1, Ordering::AcqRel);
        if entries.len() >= MEMBER_CACHE_ENTRIES {
            make_room(&mut entries);
        }
        entries.insert(member_id, Slot::Changed(Instant::now()));
    }
}

/// Drops every profile and every change window that is over; the windows still open must stay.
fn make_room(entries: &mut HashMap<Uuid, Slot>) {
    entries.retain(|_, slot| matches!(slot, Slot::Changed(at) if at.elapsed() < SEARCH_CACHE_TTL));
}

#[cfg(test)]
mod tests {
    use id77_proto::vocabulary::MemberKind;

    use super::*;

    fn commune() -> Option<MemberProfile> {
        Some(MemberProfile { kind: MemberKind::Commune, population: 1191, epci_siren: None, arrondissement: None })
    }

    #[test]
    fn a_profile_read_is_reused_and_dropped_when_the_member_changes() {
        let profiles = MemberProfiles::default();
        let (member, other) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(profiles.get(member), None);
        profiles.put(member, profiles.changes(), commune());
        profiles.put(other, profiles.changes(), None);
        assert_eq!(profiles.get(member), Some(commune()));
        assert_eq!(profiles.get(other), Some(None), "an inactive member is remembered too");
        profiles.changed(member);
        assert_eq!(profiles.get(member), None);
        assert_eq!(profiles.get(other), Some(None), "another member's profile stays");
    }

    #[test]
    fn a_read_that_may_precede_a_member_event_is_not_kept() {
        let profiles = MemberProfiles::default();
        let (member, other) = (Uuid::now_v7(), Uuid::now_v7());
        // Read, then an event is applied before the read is put back: it may be the row before the event.
        let before = profiles.changes();
        profiles.changed(other);
        profiles.put(member, before, commune());
        assert_eq!(profiles.get(member), None);
        // Read after the event, before its commit may be seen: not kept either.
        profiles.changed(member);
        profiles.put(member, profiles.changes(), None);
        assert_eq!(profiles.get(member), None);
    }
}
