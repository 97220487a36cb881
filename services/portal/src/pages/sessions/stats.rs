//! The coordinator's fill rates of sessions over a period (`GET /v1/session-statistics`): overall, by offer and by
//! EPCI (by name, as the statistics page names them).

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate, NaiveTime};

use super::{manage_view, text};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::pages::statistics::Names;
use crate::{AppState, Ctx, fr, layout};

/// The page's path.
pub const PATH: &str = "/coordination/sessions";

/// The period asked for (`du`, `au` included, jj/mm/aaaa or aaaa-mm-jj): by default the 90 days before `today`
/// and the 90 after (past sessions and those open to registration).
pub fn period(q: &Fields, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), Errors> {
    let mut errors = Errors::default();
    let mut read = |name: &str, label: &str, default: NaiveDate| match forms::value(q, name) {
        "" => Some(default),
        raw => {
            let day = fr::parse_date(raw);
            if day.is_none() {
                errors.add(
                    name,
                    label,
                    format!("« {label} » doit être une date au format jj/mm/aaaa, par exemple 01/11/2026."),
                );
            }
            day
        }
    };
    let from = read("du", "Du", today - Duration::days(90));
    let to = read("au", "Au (inclus)", today + Duration::days(90));
    match (from, to) {
        (Some(from), Some(to)) if to >= from => Ok((from, to)),
        (Some(_), Some(_)) => {
            errors.add("au", "Au (inclus)", "La fin de la période doit suivre son début.");
            Err(errors)
        }
        _ => Err(errors),
    }
}

/// The first instant of `day` in Paris, as the API takes it.
fn paris_midnight(day: NaiveDate) -> String {
    let local = day.and_time(NaiveTime::MIN);
    // Midnight always exists in Paris (the clocks change at 2 h and 3 h).
    text::paris_to_utc(local).map(text::rfc3339).unwrap_or_else(|_| format!("{day}T00:00:00Z"))
}

/// `GET /coordination/sessions`.
pub async fn page(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (period, errors) = match period(&q, fr::today()) {
        Ok(p) => (Some(p), Errors::default()),
        Err(errors) => (None, errors),
    };
    let shown = |name: &str, default: Option<NaiveDate>| match forms::value(&q, name) {
        "" => default.map(|d| d.to_string()).unwrap_or_default(),
        v => fr::parse_date(v).map_or_else(|| v.to_owned(), |d| d.to_string()),
    };
    let mut body = format!(
        r#"<p>Le remplissage des sessions de sensibilisation et de formation qui commencent dans la période : places, inscrits confirmés et présents. Les sessions annulées ne sont pas comptées.</p>{summary}<form method="get" action="{PATH}" class="form search" novalidate><fieldset><legend>Période (début des sessions)</legend>{from}{to}</fieldset><button type="submit">Afficher</button></form>"#,
        summary = forms::summary(&errors),
        from = forms::field(
            "du",
            "Du",
            Input::Text { kind: "date", autocomplete: "off" },
            &shown("du", period.map(|p| p.0)),
            true,
            fr::DATE_HINT,
            &errors
        ),
        to = forms::field(
            "au",
            "Au (inclus)",
            Input::Text { kind: "date", autocomplete: "off" },
            &shown("au", period.map(|p| p.1)),
            true,
            "Dernier jour, inclus. Format : jj/mm/aaaa.",
            &errors
        ),
    );
    let Some((from, to)) = period else {
        return layout::page_with_status(&ctx, StatusCode::BAD_REQUEST, "Remplissage des sessions", &body);
    };
    let path = format!(
        "/v1/session-statistics?from={}&to={}",
        url_component(&paris_midnight(from)),
        url_component(&paris_midnight(to + Duration::days(1)))
    );
    let (stats, epcis) = tokio::join!(
        state.gateway.get(&path, Some(&token)),
        state.gateway.get("/v1/collectivities?kind=epci&limit=100", None)
    );
    let epcis = epcis.map(|page| Names::epcis_of(&page)).unwrap_or_default();
    match stats {
        Ok(stats) => {
            body.push_str(&format!(
                "<p>Sessions commençant du {} au {} inclus.</p>",
                esc(&fr::date(&from.to_string())),
                esc(&fr::date(&to.to_string()))
            ));
            body.push_str(&manage_view::fill_rates(&stats, &epcis));
            layout::page(&ctx, "Remplissage des sessions", &body)
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}
