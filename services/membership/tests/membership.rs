//! Membership against the real PostgreSQL and NATS, with the real directory of Seine-et-Marne
//! (`@etalab/decoupage-administratif`, fetched by `make test` into `ID77_DIRECTORY_DIR`).

mod common;

use std::time::Duration;

use async_nats::jetstream;
use common::{COORDINATOR, Service, authed, directory_dir, start};
use id77_membership::directory;
use id77_platform::{Namespace, ServiceError, testing};
use id77_proto::membership::v1::{
    ApplyForMembershipRequest, ApproveMembershipRequest, CollectivityKind, GetCollectivityRequest, ListMembersRequest,
    MemberStatus, SearchCollectivitiesRequest,
};
use tonic::Code;

/// The member events on the MEMBERSHIP stream (the accounts' `user.changed` are there too).
async fn stream_messages(js: &jetstream::Context, ns: &Namespace) -> u64 {
    use futures::StreamExt;
    let stream = js.get_stream(ns.stream("MEMBERSHIP")).await.expect("stream");
    let mut subjects = stream.info_with_subjects(ns.subject("id77.membership.member.>")).await.expect("info");
    let mut count = 0;
    while let Some(Ok((_, n))) = subjects.next().await {
        count += n as u64;
    }
    count
}

#[tokio::test]
async fn the_directory_of_seine_et_marne_is_imported_and_searchable() {
    let url = testing::fresh_database_url("membership");
    let prefix = testing::fresh_prefix();
    let mut s = start(&url, &prefix).await;

    let all_communes = async {
        let mut count = 0;
        let mut token = String::new();
        let mut client = s.client.clone();
        loop {
            let page = client
                .search_collectivities(SearchCollectivitiesRequest {
                    kind: CollectivityKind::Commune.into(),
                    page_size: 100,
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .expect("search")
                .into_inner();
            count += page.collectivities.len();
            if page.next_page_token.is_empty() {
                return count;
            }
            token = page.next_page_token;
        }
    };
    assert_eq!(all_communes.await, 507, "507 current communes in Seine-et-Marne");
    let epci = s
        .client
        .search_collectivities(SearchCollectivitiesRequest {
            kind: CollectivityKind::Epci.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .expect("epci")
        .into_inner();
    assert_eq!(epci.collectivities.len(), 23, "23 EPCI with members in 77");

    // Accents and hyphens do not matter; the commune knows its EPCI.
    let found = s
        .client
        .search_collectivities(SearchCollectivitiesRequest { query: "acheres la foret".into(), ..Default::default() })
        .await
        .expect("search")
        .into_inner();
    assert_eq!(found.collectivities.first().map(|c| c.name.as_str()), Some("Achères-la-Forêt"));
    let meaux = s
        .client
        .get_collectivity(GetCollectivityRequest { siren: "217702844".into() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!((meaux.insee_code.as_str(), meaux.epci_siren.as_str()), ("77284", "200072130"));
    // The exact name first, then names starting with the query, then the others.
    let ranked = s
        .client
        .search_collectivities(SearchCollectivitiesRequest {
            query: "Meaux".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .expect("ranked")
        .into_inner();
    let names: Vec<_> = ranked.collectivities.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["Meaux", "CA du Pays de Meaux"]);
    assert!(!ranked.next_page_token.is_empty());
    let rest = s
        .client
        .search_collectivities(SearchCollectivitiesRequest {
            query: "Meaux".into(),
            page_size: 100,
            page_token: ranked.next_page_token,
            ..Default::default()
        })
        .await
        .expect("next page")
        .into_inner();
    let rest: Vec<_> = rest.collectivities.iter().map(|c| c.name.as_str()).collect();
    assert!(rest.contains(&"Crégy-lès-Meaux") && !rest.contains(&"Meaux"), "{rest:?}");
    // By INSEE code too.
    let by_insee = s
        .client
        .search_collectivities(SearchCollectivitiesRequest { query: "77284".into(), ..Default::default() })
        .await
        .expect("insee")
        .into_inner();
    assert_eq!(by_insee.collectivities.len(), 1);

    // Bad input is a typed error; a wrong check digit names no collectivité (not found, saying why).
    let err = s.client.get_collectivity(GetCollectivityRequest { siren: "217702845".into() }).await.expect_err("luhn");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("check digit"), "{}", err.message());
    let err =
        s.client.get_collectivity(GetCollectivityRequest { siren: "21770284".into() }).await.expect_err("8 digits");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s
        .client
        .search_collectivities(SearchCollectivitiesRequest { page_token: "zz".into(), ..Default::default() })
        .await
        .expect_err("token");
    assert_eq!(err.code(), Code::InvalidArgument);

    // A restart re-imports idempotently.
    let (url, js, ns) = s.stop().await;
    let s = start(&url, &prefix).await;
    let (url, js2, _) = s.stop().await;
    let count: i64 = {
        let pool = sqlx::PgPool::connect(&url).await.expect("pool");
        let n = sqlx::query_scalar("SELECT count(*) FROM collectivity").fetch_one(&pool).await.expect("count");
        pool.close().await;
        n
    };
    assert_eq!(count, 530);
    drop(js2);
    testing::delete_streams(&js, &ns).await;
    testing::drop_database(&url).await;
}

#[tokio::test]
async fn a_commune_applies_once_and_the_coordinator_approves() {
    let url = testing::fresh_database_url("membership");
    let prefix = testing::fresh_prefix();
    let mut s: Service = start(&url, &prefix).await;
    let coordinator = s.token(COORDINATOR).await;
    let apply = |siren: &str| ApplyForMembershipRequest {
        siren: siren.into(),
        contact_name: "Mairie".into(),
        contact_email: "mairie@example.fr".into(),
    };
    let member = s.client.apply_for_membership(apply("217702844")).await.expect("apply").into_inner();
    assert_eq!(member.status(), MemberStatus::Pending);
    assert_eq!(member.name, "Meaux");

    let err = s.client.apply_for_membership(apply("217702844")).await.expect_err("twice");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(ServiceError::from_status(&err).reason, "ALREADY_MEMBER");
    // Luhn-valid but not a collectivité of 77 (Paris).
    let err = s.client.apply_for_membership(apply("217500016")).await.expect_err("not in directory");
    assert_eq!(ServiceError::from_status(&err).reason, "NOT_IN_DIRECTORY");
    let err = s.client.apply_for_membership(apply("123")).await.expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Approving takes the coordinator.
    let err = s.client.approve_membership(ApproveMembershipRequest { member_id: member.id.clone() }).await;
    assert_eq!(err.map(|_| ()).map_err(|e| e.code()), Err(Code::Unauthenticated));
    let approved = s
        .client
        .approve_membership(authed(ApproveMembershipRequest { member_id: member.id.clone() }, &coordinator))
        .await
        .expect("approve")
        .into_inner();
    assert_eq!(approved.status(), MemberStatus::Active);
    assert!(approved.approved_at.is_some());
    let err = s
        .client
        .approve_membership(authed(ApproveMembershipRequest { member_id: member.id.clone() }, &coordinator))
        .await
        .expect_err("again");
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Listing pages through members with a cursor.
    let second = s.client.apply_for_membership(apply("217700012")).await.expect("apply").into_inner();
    let page1 = s
        .client
        .list_members(authed(ListMembersRequest { page_size: 1, ..Default::default() }, &coordinator))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page1.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![member.id.clone()]);
    let page2 = s
        .client
        .list_members(authed(
            ListMembersRequest { page_size: 1, page_token: page1.next_page_token, ..Default::default() },
            &coordinator,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page2.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![second.id.clone()]);
    let pending = s
        .client
        .list_members(authed(
            ListMembersRequest { status: MemberStatus::Pending.into(), ..Default::default() },
            &coordinator,
        ))
        .await
        .expect("pending")
        .into_inner();
    assert_eq!(pending.members.len(), 1);

    // applied, approved, applied: three events, published by the relay.
    let mut published = 0;
    for _ in 0..100 {
        published = stream_messages(&s.js, &s.ns).await;
        if published >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(published, 3);
    let (url, js, ns) = s.stop().await;
    testing::delete_streams(&js, &ns).await;
    testing::drop_database(&url).await;
}

#[test]
fn the_real_directory_files_select_507_communes_and_23_epci() {
    let dir = directory_dir();
    let communes = std::fs::read(dir.join("communes.json")).expect("communes");
    let epci = std::fs::read(dir.join("epci.json")).expect("epci");
    let entries = directory::select(&communes, &epci, "77").expect("select");
    assert_eq!(entries.iter().filter(|e| e.kind.as_str() == "commune").count(), 507);
    assert_eq!(entries.iter().filter(|e| e.kind.as_str() == "epci").count(), 23);
}
