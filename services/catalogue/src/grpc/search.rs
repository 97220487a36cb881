//! Search: French full text with typo correction (PostgreSQL finds and ranks the published offers), then
//! filters, facets and pages ([`crate::search`]), with recent answers reused ([`super::cache`]).

use std::sync::Arc;

use id77_platform::ServiceError;
use id77_platform::auth::Caller;
use id77_proto::catalogue::v1 as pb;

use super::cache::Matches;
use super::service::CatalogueApi;
use crate::domain::MemberProfile;
use crate::error::CatalogueError;
use crate::proto_map;
use crate::search;
use crate::store;

impl CatalogueApi {
    /// The published offers matching `words`, from the cache or PostgreSQL.
    async fn matches(&self, words: Vec<String>) -> Result<Arc<Matches>, ServiceError> {
        // Read before the query: a result read before a write is never kept under the generation after it.
        let generation = self.cache.generation();
        if let Some(matches) = self.cache.matches.get(&words, generation) {
            return Ok(matches);
        }
        let mut rows = search::find::search(&self.pool, &words).await?;
        // A search answer shows no description ([`proto_map::search_answer`]): neither kept nor copied per call.
        for row in &mut rows {
            row.offer.description = String::new();
        }
        let hits = rows
            .iter()
            .map(|r| r.hit().ok_or_else(|| ServiceError::internal("reading an offer", &r.offer.code)))
            .collect::<Result<Vec<_>, _>>()?;
        let matches = Arc::new(Matches { rows, hits });
        self.cache.matches.put(words, generation, matches.clone());
        Ok(matches)
    }

    /// A search answer, reused for the same public request within [`super::SEARCH_CACHE_TTL`].
    pub(super) async fn search_cached(
        &self,
        caller: Option<&Caller>,
        req: pb::SearchOffersRequest,
    ) -> Result<pb::SearchOffersResponse, ServiceError> {
        if req.eligible_only {
            return self.search(caller, req).await;
        }
        let generation = self.cache.generation();
        let key = id77_proto::prost::Message::encode_to_vec(&req);
        if let Some(answer) = self.cache.answers.get(&key, generation) {
            return Ok(answer.as_ref().clone());
        }
        let answer = self.search(caller, req).await?;
        self.cache.answers.put(key, generation, Arc::new(answer.clone()));
        Ok(answer)
    }

    /// "Eligible for my collectivité": the caller's member, as membership's events made it known (a recent
    /// read is reused: [`super::cache::MemberProfiles`]); MEMBER_NOT_ACTIVE for an unknown or inactive member.
    async fn eligible_member(&self, caller: Option<&Caller>) -> Result<MemberProfile, ServiceError> {
        let member_id = crate::access::eligibility_member(caller).map_err(|d| d.into_error("member", ""))?;
        let profile = match self.members.get(member_id) {
            Some(profile) => profile,
            None => {
                let changes = self.members.changes();
                let row = store::member(&self.pool, member_id).await?.filter(|m| m.status == "active");
                let profile = row.as_ref().and_then(store::MemberRow::profile);
                self.members.put(member_id, changes, profile.clone());
                profile
            }
        };
        profile.ok_or_else(|| CatalogueError::MemberNotActive.into())
    }

    async fn search(
        &self,
        caller: Option<&Caller>,
        req: pb::SearchOffersRequest,
    ) -> Result<pb::SearchOffersResponse, ServiceError> {
        let mut query = proto_map::search_query(req)?;
        if query.eligible_only {
            query.filters.member = Some(self.eligible_member(caller).await?);
        }
        let words = search::query_words(&query.q);
        let asked = words.join(" ");
        let matches = self.matches(words).await?;
        let result = search::page(&matches.hits, &query.filters, query.start.as_ref(), query.limit);
        proto_map::search_answer(&matches.rows, result, &asked)
    }
}
