//! The full catalogue against the local PostgreSQL and NATS: French search (ranking, accents, typos, facets,
//! eligibility from membership's events), the operator's lifecycle (new version + `offer.updated`, archive +
//! `offer.archived`), and exhibition bookings (concurrent holds: exactly one per copy; confirmation and release
//! from routing's referral events).

use std::collections::HashSet;
mod common;

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use id77_platform::auth::Role;
use id77_platform::consumer::{self, Outcome};
use id77_platform::streams;
use id77_platform::testing::TestKeys;
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
use id77_proto::membership::v1 as membership;
use id77_proto::routing::v1 as routing;
use prost::{Message, Name};
use tonic::transport::Channel;
use uuid::Uuid;

/// The catalogue under test, with the helpers its tests share.
struct Env(common::Running);

impl std::ops::Deref for Env {
    type Target = common::Running;
    fn deref(&self) -> &common::Running {
        &self.0
    }
}

impl Env {
    async fn start(label: &str) -> anyhow::Result<Self> {
        Ok(Self(common::Running::start(label, 10, |config| config).await?))
    }

    fn client(&self) -> CatalogueServiceClient<Channel> {
        CatalogueServiceClient::new(self.channel.clone())
    }

    async fn stop(self) {
        self.0.stop().await;
    }

    /// Publishes an event of another service on its (prefixed) stream.
    async fn publish<M: Message + Name>(&self, stream: streams::StreamDef, subject: &str, id: &str, event: &M) {
        common::publish(&self.js, &self.ns, stream, subject, id, event).await;
    }

    /// The payloads published on `subject` so far, in order.
    async fn events<M: Message + Default>(&self, subject: &str) -> anyhow::Result<Vec<M>> {
        common::events(&self.js, &self.ns, subject).await
    }

    async fn wait_events<M: Message + Default>(&self, subject: &str, n: usize) -> anyhow::Result<Vec<M>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events::<M>(subject).await.unwrap_or_default();
            if events.len() >= n {
                return Ok(events);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} of {n} events on {subject}", events.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

async fn search(client: &mut CatalogueServiceClient<Channel>, q: &str) -> anyhow::Result<pb::SearchOffersResponse> {
    let request = pb::SearchOffersRequest { q: q.into(), page_size: 100, ..Default::default() };
    Ok(client.search_offers(request).await?.into_inner())
}

fn codes(r: &pb::SearchOffersResponse) -> Vec<&str> {
    r.offers.iter().map(|o| o.code.as_str()).collect()
}

fn facet<'a>(r: &'a pb::SearchOffersResponse, name: &str, value: &str) -> u32 {
    r.facets
        .iter()
        .find(|f| f.name == name)
        .and_then(|f| f.values.iter().find(|v| v.value == value))
        .map_or(0, |v: &'a pb::FacetValue| v.count)
}

#[tokio::test]
async fn french_search_ranks_tolerates_typos_counts_facets_and_filters_eligibility() -> anyhow::Result<()> {
    let env = Env::start("catalogue-search").await?;
    let result = search_scenario(&env).await;
    env.stop().await;
    result
}

async fn search_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();

    // "voirie": the road offers, by relevance; those with the word in the title and themes first.
    let voirie = search(&mut client, "voirie").await?;
    ensure!(voirie.total >= 8, "{:?}", codes(&voirie));
    let top = &voirie.offers[0];
    ensure!(top.themes.iter().any(|t| t == "voirie") && top.rank > 0.0, "{top:?}");
    let ranks: Vec<f32> = voirie.offers.iter().map(|o| o.rank).collect();
    ensure!(ranks.windows(2).all(|w| w[0] >= w[1]), "not ordered by rank: {ranks:?}");
    ensure!(codes(&voirie).contains(&"amo-amenagement-voirie"));
    ensure!(voirie.corrected_q.is_empty());
    // Facets add up: each category count, summed, is the total.
    let by_category: u32 =
        voirie.facets.iter().find(|f| f.name == "category").map_or(0, |f| f.values.iter().map(|v| v.count).sum());
    ensure!(by_category == voirie.total, "{by_category} != {}", voirie.total);
    ensure!(facet(&voirie, "provider", "dir-routes") >= 5, "{:?}", voirie.facets);
    ensure!(facet(&voirie, "theme", "voirie") >= 5);

    // "eau potable": stemmed, with its synonyms; the drinking-water offers lead.
    let eau = search(&mut client, "eau potable").await?;
    ensure!(eau.total >= 3, "{:?}", codes(&eau));
    ensure!(
        ["assistance-eau-potable", "schema-directeur-eau-potable"].contains(&eau.offers[0].code.as_str()),
        "{:?}",
        codes(&eau)
    );
    ensure!(eau.offers.iter().take(3).all(|o| {
        let text = format!("{} {} {}", o.title, o.summary, o.description).to_lowercase();
        text.contains("eau") && text.contains("potable")
    }));

    // Plain French: not every word must match (an offer matching more words comes first), and the field's
    // synonyms are searched too.
    let training = search(&mut client, "formation marchés publics").await?;
    ensure!(codes(&training).first() == Some(&"formation-marches-publics"), "{:?}", codes(&training));
    ensure!(training.corrected_q.is_empty(), "{:?}", training.corrected_q);
    let procurement = search(&mut client, "commande publique").await?;
    ensure!(codes(&procurement).first() == Some(&"formation-marches-publics"), "{:?}", codes(&procurement));
    let pavement = search(&mut client, "refaire le trottoir").await?;
    ensure!(pavement.total >= 5 && pavement.total < 40, "{:?}", codes(&pavement));
    ensure!(pavement.offers.iter().take(5).all(|o| o.themes.iter().any(|t| t == "voirie")), "{:?}", codes(&pavement));
    ensure!(codes(&pavement).contains(&"programme-entretien-chaussees"), "{:?}", codes(&pavement));
    ensure!(pavement.corrected_q.is_empty(), "{:?}", pavement.corrected_q);

    // "exposition": the loans (accents and plural folded: "expositions", "Exposition").
    let expo = search(&mut client, "Expositions").await?;
    ensure!(facet(&expo, "category", "exhibition_loan") >= 15, "{:?}", expo.facets);
    ensure!(expo.offers[0].category == i32::from(pb::OfferCategory::ExhibitionLoan));

    // Accents ignored both ways.
    let a = search(&mut client, "energie").await?;
    let b = search(&mut client, "énergie").await?;
    ensure!(a.total > 3 && codes(&a) == codes(&b), "{:?} vs {:?}", codes(&a), codes(&b));
    // A correctly spelled accented word is no typo: folding its accents is not a correction.
    ensure!(b.corrected_q.is_empty(), "{:?}", b.corrected_q);
    let ecoles = search(&mut client, "écoles").await?;
    ensure!(ecoles.corrected_q.is_empty(), "{:?}", ecoles.corrected_q);

    // A typo: "voiree" is searched as "voirie".
    let typo = search(&mut client, "voiree").await?;
    ensure!(typo.corrected_q == "voirie", "{:?}", typo.corrected_q);
    ensure!(codes(&typo) == codes(&voirie), "typo results differ");
    // Correction only when nothing was found: a query with a known word is searched as asked.
    let mixed = search(&mut client, "aménagement voiree").await?;
    ensure!(mixed.corrected_q.is_empty() && mixed.total > 0, "{:?}", mixed.corrected_q);
    // Only the replaced words are corrected; the others stay as asked, accents included.
    let both = search(&mut client, "zèbre voiree").await?;
    ensure!(both.corrected_q == "zèbre voirie", "{:?}", both.corrected_q);
    // Correct accented words are never corrected, alone or together.
    let accented = search(&mut client, "réhabilitation école énergétique").await?;
    ensure!(accented.total > 0 && accented.corrected_q.is_empty(), "{:?}", accented.corrected_q);

    // Nothing found: an empty page, not an error.
    let none = search(&mut client, "zzzqqq").await?;
    ensure!(none.total == 0 && none.offers.is_empty());

    // Filters narrow the results; each facet is counted with the other filters.
    let request = pb::SearchOffersRequest {
        q: "voirie".into(),
        category: pb::OfferCategory::AwarenessTraining.into(),
        page_size: 100,
        ..Default::default()
    };
    let training = client.search_offers(request).await?.into_inner();
    ensure!(training.offers.iter().all(|o| o.category == i32::from(pb::OfferCategory::AwarenessTraining)));
    ensure!(training.total == facet(&voirie, "category", "awareness_training"));
    ensure!(
        facet(&training, "category", "integrated_engineering") == facet(&voirie, "category", "integrated_engineering")
    );
    let request = pb::SearchOffersRequest {
        price_kind: pb::PriceKind::PerInhabitant.into(),
        page_size: 100,
        ..Default::default()
    };
    let per = client.search_offers(request).await?.into_inner();
    ensure!(
        per.total >= 3
            && per.offers.iter().all(|o| o
                .price_rule
                .as_ref()
                .is_some_and(|p| p.kind == i32::from(pb::PriceKind::PerInhabitant))
                && !o.billed
                && o.price_cents == 0)
    );

    // Cursor pagination: stable, no overlap, same order as one big page.
    let mut paged = Vec::new();
    let mut token = String::new();
    for _ in 0..50 {
        let request = pb::SearchOffersRequest {
            q: "voirie".into(),
            page_size: 3,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = client.search_offers(request).await?.into_inner();
        paged.extend(page.offers.into_iter().map(|o| o.code));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    ensure!(paged == codes(&voirie), "{paged:?}");
    // Page numbers: the same pages.
    let mut numbered = Vec::new();
    for number in 1..=voirie.total.div_ceil(3) {
        let request = pb::SearchOffersRequest { q: "voirie".into(), page_size: 3, page: number, ..Default::default() };
        let page = client.search_offers(request).await?.into_inner();
        ensure!(page.total == voirie.total);
        numbered.extend(page.offers.into_iter().map(|o| o.code));
    }
    ensure!(numbered == codes(&voirie), "{numbered:?}");

    // Eligibility: a small commune known from membership's events sees no EPCI-only offer.
    let member = Uuid::now_v7();
    let approved = membership::MemberApproved {
        member_id: member.to_string(),
        siren: "217700012".into(),
        name: "Achères-la-Forêt".into(),
        kind: membership::CollectivityKind::Commune.into(),
        population: 1191,
        occurred_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
        epci_siren: "200072346".into(),
        arrondissement: "774".into(),
        ..Default::default()
    };
    env.publish(streams::MEMBERSHIP, "id77.membership.member.approved", &format!("approved-{member}"), &approved).await;
    let user = env.keys.token(Role::MemberUser, Some(member), None);
    let eligible = pb::SearchOffersRequest { eligible_only: true, page_size: 100, ..Default::default() };
    let mut found = None;
    for _ in 0..100 {
        match client.search_offers(with_token(eligible.clone(), &user)).await {
            Ok(r) => {
                found = Some(r.into_inner());
                break;
            }
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => bail!("{s:?}"),
        }
    }
    let mine = found.context("the member never reached the catalogue")?;
    let all =
        client.search_offers(pb::SearchOffersRequest { page_size: 100, ..Default::default() }).await?.into_inner();
    ensure!(mine.total < all.total, "{} vs {}", mine.total, all.total);
    for o in &mine.offers {
        let e = o.eligibility.clone().unwrap_or_default();
        ensure!(
            e.member_kinds.is_empty() || e.member_kinds.contains(&i32::from(pb::MemberKind::Commune)),
            "{}",
            o.code
        );
        ensure!(e.max_population == 0 || e.max_population >= 1191, "{}", o.code);
        ensure!(
            e.arrondissements.is_empty()
                || e.arrondissements.iter().any(|a| a == "774")
                || e.epci_sirens.iter().any(|s| s == "200072346"),
            "{}",
            o.code
        );
    }
    ensure!(!codes(&mine).contains(&"plui-accompagnement"), "an EPCI-only offer");
    ensure!(!codes(&mine).contains(&"petites-villes-provinois"), "another arrondissement's offer");
    let velo = pb::SearchOffersRequest { q: "boucles vélo".into(), eligible_only: true, ..Default::default() };
    let velo = client.search_offers(with_token(velo, &user)).await?.into_inner();
    ensure!(codes(&velo).contains(&"valorisation-boucles-velo"), "its own arrondissement's offer: {:?}", codes(&velo));
    // Not a member: refused; an unknown member: not yet active.
    let agent = env.keys.token(Role::ProviderAgent, None, Some("caue77"));
    let refused = client.search_offers(with_token(eligible.clone(), &agent)).await;
    ensure!(refused.err().map(|s| s.code()) == Some(tonic::Code::PermissionDenied));
    let stranger = env.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    let unknown = client.search_offers(with_token(eligible.clone(), &stranger)).await;
    ensure!(unknown.err().map(|s| s.code()) == Some(tonic::Code::FailedPrecondition));
    Ok(())
}

fn offer_input(code: &str) -> pb::OfferInput {
    pb::OfferInput {
        code: code.into(),
        title: "Diagnostic des passerelles piétonnes".into(),
        summary: "Inspection des passerelles communales et programme d'entretien.".into(),
        category: pb::OfferCategory::IntegratedEngineering.into(),
        themes: vec!["voirie".into()],
        provider_code: "dir-routes".into(),
        duration: "2 mois".into(),
        price_rule: Some(pb::PriceRule {
            kind: pb::PriceKind::DailyRate.into(),
            amount_cents: 55_000,
            days: 4,
            ..Default::default()
        }),
        vat_note: "TVA non applicable".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_operator_drafts_publishes_edits_and_archives_with_events() -> anyhow::Result<()> {
    let env = Env::start("catalogue-ops").await?;
    let result = lifecycle_scenario(&env).await;
    env.stop().await;
    result
}

async fn lifecycle_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();
    let operator = env.keys.token(Role::Operator, None, None);
    let coordinator = env.keys.token(Role::Coordinator, None, None);

    // Only the operator writes.
    let create = pb::CreateOfferRequest { offer: Some(offer_input("diagnostic-passerelles")) };
    let denied = client.create_offer(with_token(create.clone(), &coordinator)).await;
    ensure!(denied.err().map(|s| s.code()) == Some(tonic::Code::PermissionDenied));
    let anonymous = client.create_offer(create.clone()).await;
    ensure!(anonymous.err().map(|s| s.code()) == Some(tonic::Code::PermissionDenied));
    // Validation reports every field.
    let mut bad = offer_input("Pas Un Code");
    bad.provider_code = "nobody".into();
    bad.price_rule = Some(pb::PriceRule { kind: pb::PriceKind::Flat.into(), ..Default::default() });
    let invalid = client.create_offer(with_token(pb::CreateOfferRequest { offer: Some(bad) }, &operator)).await;
    let status = invalid.err().context("invalid offer accepted")?;
    ensure!(status.code() == tonic::Code::InvalidArgument, "{status:?}");
    for field in ["offer.code", "offer.provider_code", "offer.price.amount_cents"] {
        ensure!(status.message().contains(field), "{field} not reported: {}", status.message());
    }

    // Draft: invisible to the public, not searchable, no event.
    let draft = client.create_offer(with_token(create.clone(), &operator)).await?.into_inner();
    ensure!(draft.status == i32::from(pb::OfferStatus::Draft) && draft.version == 1);
    ensure!(draft.billed && draft.price_cents == 220_000, "daily rate x days: {draft:?}");
    let again = client.create_offer(with_token(create, &operator)).await;
    ensure!(again.err().map(|s| s.code()) == Some(tonic::Code::AlreadyExists));
    let hidden = client.get_offer(pb::GetOfferRequest { id: draft.id.clone(), version: 0 }).await;
    ensure!(hidden.err().map(|s| s.code()) == Some(tonic::Code::NotFound));
    ensure!(!codes(&search(&mut client, "passerelles").await?).contains(&"diagnostic-passerelles"));

    // Publish: searchable, announced.
    let published = client
        .publish_offer(with_token(pb::PublishOfferRequest { id: draft.id.clone() }, &operator))
        .await?
        .into_inner();
    ensure!(published.status == i32::from(pb::OfferStatus::Published) && published.version == 1);
    ensure!(codes(&search(&mut client, "passerelles").await?).contains(&"diagnostic-passerelles"));
    let again = client.publish_offer(with_token(pb::PublishOfferRequest { id: draft.id.clone() }, &operator)).await;
    ensure!(again.err().map(|s| s.code()) == Some(tonic::Code::FailedPrecondition));

    // Edit a published offer: version 2 under the same id, offer.updated + offer.published; v1 kept.
    let mut edited = offer_input("diagnostic-passerelles");
    edited.title = "Diagnostic des passerelles et ponts piétons".into();
    let update = pb::UpdateOfferRequest { id: draft.id.clone(), offer: Some(edited.clone()), expected_version: 1 };
    let v2 = client.update_offer(with_token(update.clone(), &operator)).await?.into_inner();
    ensure!(v2.id == draft.id && v2.version == 2 && v2.title.contains("ponts"), "{v2:?}");
    let stale = client.update_offer(with_token(update, &operator)).await;
    ensure!(stale.err().map(|s| s.code()) == Some(tonic::Code::FailedPrecondition), "expected_version 1 is stale");
    let v1 = client.get_offer(pb::GetOfferRequest { id: draft.id.clone(), version: 1 }).await?.into_inner();
    ensure!(v1.version == 1 && v1.title == "Diagnostic des passerelles piétonnes", "{v1:?}");
    let updated: Vec<id77_proto::catalogue::v1::OfferUpdated> =
        env.wait_events("id77.catalogue.offer.updated", 1).await?;
    let event = updated.iter().find(|e| e.offer.as_ref().is_some_and(|o| o.id == draft.id)).context("offer.updated")?;
    ensure!(event.previous_version == 1 && event.offer.as_ref().map(|o| o.version) == Some(2));
    ensure!(event.provider.as_ref().map(|p| p.code.as_str()) == Some("dir-routes"));
    let published: Vec<pb::OfferPublished> = env.wait_events("id77.catalogue.offer.published", 1).await?;
    let versions: Vec<i32> =
        published.iter().filter_map(|e| e.offer.as_ref()).filter(|o| o.id == draft.id).map(|o| o.version).collect();
    ensure!(versions == [1, 2], "{versions:?}");

    // Archive: announced, no longer searchable, still readable (requests keep it); no further edits.
    let archive = pb::ArchiveOfferRequest { id: "diagnostic-passerelles".into(), reason: "remplacée".into() };
    let archived = client.archive_offer(with_token(archive, &operator)).await?.into_inner();
    ensure!(archived.status == i32::from(pb::OfferStatus::Archived) && archived.version == 2);
    let events: Vec<pb::OfferArchived> = env.wait_events("id77.catalogue.offer.archived", 1).await?;
    ensure!(events[0].offer_id == draft.id && events[0].version == 2 && events[0].reason == "remplacée");
    ensure!(!codes(&search(&mut client, "passerelles").await?).contains(&"diagnostic-passerelles"));
    client.get_offer(pb::GetOfferRequest { id: draft.id.clone(), version: 0 }).await?;
    let edit = pb::UpdateOfferRequest { id: draft.id.clone(), offer: Some(edited), expected_version: 0 };
    let refused = client.update_offer(with_token(edit, &operator)).await;
    ensure!(refused.err().map(|s| s.code()) == Some(tonic::Code::FailedPrecondition));

    // Providers: created, edited (their published offers are announced again with the new details).
    let provider = pb::Provider {
        code: "sm-tourisme".into(),
        name: "Office de tourisme départemental".into(),
        kind: pb::ProviderKind::AssociatedOrganisation.into(),
        contact_email: "Tourisme@id77.fr".into(),
    };
    let created = client
        .create_provider(with_token(pb::UpsertProviderRequest { provider: Some(provider.clone()) }, &operator))
        .await?
        .into_inner();
    ensure!(created.contact_email == "tourisme@id77.fr");
    let dup =
        client.create_provider(with_token(pb::UpsertProviderRequest { provider: Some(provider) }, &operator)).await;
    ensure!(dup.err().map(|s| s.code()) == Some(tonic::Code::AlreadyExists));
    Ok(())
}

#[tokio::test]
async fn concurrent_holds_lend_each_copy_once_and_referrals_confirm_or_release() -> anyhow::Result<()> {
    let env = Env::start("catalogue-bookings").await?;
    let result = booking_scenario(&env).await;
    env.stop().await;
    result
}

async fn booking_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();
    let coordinator = env.keys.token(Role::Coordinator, None, None);
    let today = id77_platform::time::now().date_naive();
    let day = |n: i64| (today + chrono::Duration::days(n)).to_string();
    // "La Seine-et-Marne dans la Grande Guerre" has two copies.
    let expo =
        client.get_offer(pb::GetOfferRequest { id: "expo-grande-guerre-77".into(), version: 0 }).await?.into_inner();
    ensure!(expo.copies == 2);

    // 24 members ask for overlapping dates at once: exactly two win, one per copy.
    let mut tasks = Vec::new();
    for i in 0..24i64 {
        let mut client = client.clone();
        let token = coordinator.clone();
        let (from, to) = (day(30 + i % 3), day(40 + i % 5));
        tasks.push(tokio::spawn(async move {
            let request = pb::HoldBookingRequest {
                exhibition_id: "expo-grande-guerre-77".into(),
                from,
                to,
                member_id: Uuid::now_v7().to_string(),
                ..Default::default()
            };
            client.hold_booking(with_token(request, &token)).await
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(b) => won.push(b.into_inner()),
            Err(s) => ensure!(
                s.code() == tonic::Code::FailedPrecondition && s.message().contains("every copy"),
                "unexpected failure: {s:?}"
            ),
        }
    }
    ensure!(won.len() == 2, "{} holds won: {won:?}", won.len());
    let copies: HashSet<&str> = won.iter().map(|b| b.copy_id.as_str()).collect();
    ensure!(copies.len() == 2, "one copy lent twice: {won:?}");

    // The database itself refuses an overlapping live booking of a copy.
    let pool = sqlx::PgPool::connect(&env.database_url).await?;
    let copy = Uuid::parse_str(&won[0].copy_id)?;
    let clash = sqlx::query(
        "INSERT INTO booking (id, copy_id, offer_id, member_id, start_date, end_date, status)
         VALUES ($1, $2, $3, $4, $5::date, $5::date, 'held')",
    )
    .bind(Uuid::now_v7())
    .bind(copy)
    .bind(Uuid::parse_str(&expo.id)?)
    .bind(Uuid::now_v7())
    .bind(&won[0].from)
    .execute(&pool)
    .await;
    ensure!(
        matches!(&clash, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23P01")),
        "exclusion constraint: {clash:?}"
    );

    // Availability shows both copies busy on those days, free before.
    let availability = client
        .get_availability(pb::GetAvailabilityRequest { exhibition_id: expo.id.clone(), from: day(29), to: day(35) })
        .await?
        .into_inner();
    ensure!(availability.copies == 2 && availability.days.len() == 7);
    ensure!(availability.days[0].available_copies == 2 && availability.days[6].available_copies == 0);

    // A member's hold for a request: the provider's acceptance confirms it, a decline releases another.
    let member = Uuid::now_v7();
    let user = env.keys.token(Role::MemberAdmin, Some(member), None);
    let (accepted_request, declined_request) = (Uuid::now_v7(), Uuid::now_v7());
    let hold = |request: Uuid, from: i64| pb::HoldBookingRequest {
        exhibition_id: expo.code.clone(),
        from: day(from),
        to: day(from + 10),
        request_id: request.to_string(),
        ..Default::default()
    };
    let a = client.hold_booking(with_token(hold(accepted_request, 100), &user)).await?.into_inner();
    let retry = client.hold_booking(with_token(hold(accepted_request, 100), &user)).await?.into_inner();
    ensure!(retry.id == a.id, "a retried hold made a second booking");
    let d = client.hold_booking(with_token(hold(declined_request, 200), &user)).await?.into_inner();
    ensure!(a.status == i32::from(pb::BookingStatus::Held) && a.member_id == member.to_string());
    let other_member = env.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    let not_theirs = client
        .release_booking(with_token(
            pb::BookingActionRequest { id: a.id.clone(), reason: String::new() },
            &other_member,
        ))
        .await;
    ensure!(not_theirs.err().map(|s| s.code()) == Some(tonic::Code::NotFound));
    let accepted = routing::ReferralAccepted {
        referral_id: Uuid::now_v7().to_string(),
        request_id: accepted_request.to_string(),
        offer_id: expo.id.clone(),
        member_id: member.to_string(),
        provider_code: "dir-culture".into(),
        occurred_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
        ..Default::default()
    };
    env.publish(streams::ROUTING, "id77.routing.referral.accepted", "acc-1", &accepted).await;
    let declined = routing::ReferralDeclined {
        referral_id: Uuid::now_v7().to_string(),
        request_id: declined_request.to_string(),
        offer_id: expo.id.clone(),
        member_id: member.to_string(),
        provider_code: "dir-culture".into(),
        reason: "indisponible".into(),
        occurred_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
        ..Default::default()
    };
    env.publish(streams::ROUTING, "id77.routing.referral.declined", "dec-1", &declined).await;
    let confirmed: Vec<pb::BookingConfirmed> = env.wait_events("id77.catalogue.booking.confirmed", 1).await?;
    ensure!(confirmed.iter().any(|e| {
        e.booking.as_ref().is_some_and(|b| b.id == a.id && b.status == i32::from(pb::BookingStatus::Confirmed))
    }));
    let released: Vec<pb::BookingReleased> = env.wait_events("id77.catalogue.booking.released", 1).await?;
    ensure!(
        released.iter().any(|e| e.booking.as_ref().is_some_and(|b| b.id == d.id) && e.reason == "referral declined")
    );
    // The released dates are free again; the member releases its confirmed loan itself.
    let again = client.hold_booking(with_token(hold(Uuid::now_v7(), 200), &user)).await?.into_inner();
    ensure!(again.copy_id == d.copy_id, "the released copy is lent again");
    let gone = client
        .release_booking(with_token(pb::BookingActionRequest { id: a.id.clone(), reason: "annulé".into() }, &user))
        .await?
        .into_inner();
    ensure!(gone.status == i32::from(pb::BookingStatus::Released));
    let confirm_released = client
        .confirm_booking(with_token(pb::BookingActionRequest { id: a.id.clone(), reason: String::new() }, &coordinator))
        .await;
    ensure!(confirm_released.err().map(|s| s.code()) == Some(tonic::Code::FailedPrecondition));
    // Bad dates are typed errors.
    let bad =
        pb::HoldBookingRequest { exhibition_id: expo.code.clone(), from: day(10), to: day(5), ..Default::default() };
    let refused = client.hold_booking(with_token(bad, &user)).await;
    ensure!(refused.err().map(|s| s.code()) == Some(tonic::Code::InvalidArgument));

    // A batch of referral outcomes (issue 23: the bookings of its requests locked in one statement): x accepted then
    // withdrawn, y accepted, z (no booking) accepted; x's withdrawal finds x as its acceptance left it.
    let (x, y, z) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let bx = client.hold_booking(with_token(hold(x, 300), &user)).await?.into_inner();
    let by = client.hold_booking(with_token(hold(y, 400), &user)).await?.into_inner();
    let outcome = |subject: &str, request: Uuid, message: Vec<u8>| id77_platform::Event {
        subject: subject.into(),
        message_id: format!("{subject}-{request}"),
        event_type: String::new(),
        payload: message.into(),
        headers: Default::default(),
        delivered: 1,
    };
    let accept = |request: Uuid| routing::ReferralAccepted { request_id: request.to_string(), ..accepted.clone() };
    let withdrawn =
        routing::ReferralWithdrawn { request_id: x.to_string(), reason: "annulée".into(), ..Default::default() };
    let batch = vec![
        outcome("id77.routing.referral.accepted", x, accept(x).encode_to_vec()),
        outcome("id77.routing.referral.accepted", y, accept(y).encode_to_vec()),
        outcome("id77.routing.referral.accepted", z, accept(z).encode_to_vec()),
        outcome("id77.routing.referral.withdrawn", x, withdrawn.encode_to_vec()),
    ];
    let referrals = id77_catalogue::events::ReferralEvents;
    let results = consumer::apply_batch(&pool, "test-referrals", &referrals, &batch, &[]).await;
    ensure!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    let status = |id: &str| {
        let id = Uuid::parse_str(id).map_err(anyhow::Error::from);
        let pool = pool.clone();
        async move {
            Ok::<String, anyhow::Error>(
                sqlx::query_scalar("SELECT status FROM booking WHERE id = $1").bind(id?).fetch_one(&pool).await?,
            )
        }
    };
    ensure!(status(&bx.id).await? == "released", "x accepted, then withdrawn in the same batch");
    ensure!(status(&by.id).await? == "confirmed");
    let again = consumer::apply_batch(&pool, "test-referrals", &referrals, &batch, &[]).await;
    ensure!(again.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{again:?}");
    pool.close().await;
    Ok(())
}
