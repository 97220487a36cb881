//! Demo sessions (`ID77_DEMO_SESSIONS=1`, issue 22 item 9): when no session exists yet, two or three sessions
//! for each of ten awareness and training offers over the next four months, on working days, mornings
//! (9 h 30 – 12 h 30) or afternoons (14 h – 17 h) Paris time, in communes of Seine-et-Marne or online. They go
//! through the same flow as the providers' own, so their events are published.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use id77_platform::time;
use sqlx::{PgConnection, PgPool};

use crate::domain::OfferKey;
use crate::domain::session::{PlaceInput, SessionInput};
use crate::domain::working_days::is_working_day;
use crate::flow::sessions;
use crate::{session_store, store};

/// Offers given demo sessions.
const OFFERS: usize = 10;

/// (INSEE, commune, address).
const PLACES: [(&str, &str, &str); 5] = [
    ("77288", "Melun", "Hôtel du Département, 12 rue des Saints-Pères"),
    ("77284", "Meaux", "Salle des fêtes, 2 boulevard Jean Rose"),
    ("77186", "Fontainebleau", "Salle des élus, hôtel de ville, 40 rue Grande"),
    ("77379", "Provins", "Centre culturel Saint-Ayoul, 2 rue Saint-Thibault"),
    ("77108", "Chelles", "Hôtel de ville, parc du Souvenir Émile Fouchard"),
];

/// An offer the demo schedules: its code and its price per participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOffer {
    pub code: String,
    pub price_per_participant_cents: i64,
}

/// The first working day on or after `day`.
fn working_day_from(day: NaiveDate) -> NaiveDate {
    day.iter_days().take(15).find(|d| is_working_day(*d)).unwrap_or(day)
}

fn paris(day: NaiveDate, h: u32, m: u32) -> Option<DateTime<Utc>> {
    time::paris_to_utc(day.and_time(NaiveTime::from_hms_opt(h, m, 0)?))
}

/// The sessions to schedule, deterministic for a given day: (offer code, session).
pub fn plan(offers: &[DemoOffer], now: DateTime<Utc>) -> Vec<(String, SessionInput)> {
    let today = time::paris(now).date();
    let mut out = Vec::new();
    for (i, offer) in offers.iter().take(OFFERS).enumerate() {
        for j in 0..(2 + i % 2) {
            let offset = u64::try_from(8 + i * 4 + j * 38).unwrap_or(8);
            let Some(day) = today.checked_add_days(Days::new(offset)).map(working_day_from) else { continue };
            let morning = (i + j) % 2 == 0;
            let (start, end) =
                if morning { (paris(day, 9, 30), paris(day, 12, 30)) } else { (paris(day, 14, 0), paris(day, 17, 0)) };
            let (Some(starts_at), Some(ends_at)) = (start, end) else { continue };
            let online = (i * 3 + j) % 4 == 3;
            let (insee, commune, address) = PLACES[(i + j) % PLACES.len()];
            let place = if online {
                PlaceInput {
                    online: true,
                    online_link: format!("https://visio.seine-et-marne.fr/id77/{}-{}", offer.code, j + 1),
                    ..Default::default()
                }
            } else {
                PlaceInput {
                    online: false,
                    commune_insee: insee.into(),
                    commune_name: commune.into(),
                    address: address.into(),
                    online_link: String::new(),
                }
            };
            let deadline = starts_at - chrono::Duration::days(2);
            out.push((
                offer.code.clone(),
                SessionInput {
                    starts_at: Some(starts_at),
                    ends_at: Some(ends_at),
                    place,
                    capacity: u32::try_from(12 + (i % 3) * 6).unwrap_or(12),
                    member_quota: if i % 2 == 0 { 3 } else { 0 },
                    registration_deadline: (deadline > now).then_some(deadline),
                    price_per_participant_cents: offer.price_per_participant_cents,
                    details: "Programme : apports, échanges d'expériences entre collectivités, cas pratiques. \
                              Public : élus et agents des collectivités adhérentes."
                        .into(),
                },
            ));
        }
    }
    out
}

/// Schedules the demo sessions if there is no session yet (under an advisory lock, so that replicas starting
/// together schedule them once); how many were scheduled.
pub async fn schedule(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut conn = pool.acquire().await?;
    session_store::lock_demo(&mut conn).await?;
    let scheduled = schedule_locked(pool, &mut conn, now).await;
    session_store::unlock_demo(&mut conn).await?;
    scheduled
}

async fn schedule_locked(pool: &PgPool, conn: &mut PgConnection, now: DateTime<Utc>) -> anyhow::Result<usize> {
    if session_store::any_session(conn).await? {
        return Ok(0);
    }
    let offers: Vec<DemoOffer> = store::all_offers(conn)
        .await?
        .into_iter()
        .filter(|o| o.category == "awareness_training" && o.status == "published")
        .map(|o| DemoOffer {
            price_per_participant_cents: if o.price_kind == "flat" { o.price_amount_cents } else { 0 },
            code: o.code,
        })
        .collect();
    let mut scheduled = 0;
    for (code, input) in plan(&offers, now) {
        let key = OfferKey { id: None, code: code.clone(), written: code.clone() };
        sessions::schedule(pool, sessions::ScheduledBy::Demo, &key, &input)
            .await
            .map_err(|e| anyhow::anyhow!("demo session of {code}: {e}"))?;
        scheduled += 1;
    }
    Ok(scheduled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Timelike};

    #[test]
    fn demo_sessions_are_on_working_days_in_the_next_four_months() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 1, 0, 0).single().unwrap_or_default();
        let offers: Vec<DemoOffer> =
            (0..12).map(|i| DemoOffer { code: format!("formation-{i}"), price_per_participant_cents: 0 }).collect();
        let plan = plan(&offers, now);
        assert_eq!(plan.len(), 25, "two or three for each of ten offers");
        for (code, s) in &plan {
            let start = s.starts_at.unwrap_or_default();
            let local = time::paris(start);
            assert!(is_working_day(local.date()), "{code} on {local}");
            assert!((local.hour(), local.minute()) == (9, 30) || (local.hour(), local.minute()) == (14, 0));
            assert!(start > now && (start - now).num_days() <= 125, "{code} at {start}");
            let valid = crate::domain::session::validate_session(s, now);
            assert!(valid.is_ok(), "{code}: {valid:?}");
        }
        assert!(plan.iter().any(|(_, s)| s.place.online) && plan.iter().any(|(_, s)| !s.place.online));
        assert!(plan.iter().all(|(_, s)| s.starts_at.is_some_and(|t| t.year() >= 2026)));
    }
}
