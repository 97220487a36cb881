//! The coordinator's statistics over a period (`GET /v1/statistics/requests`): counts by status, category,
//! provider, EPCI and arrondissement, median times to the first answer and to completion, satisfaction.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use serde_json::Value;

use super::common::{items, s};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::{AppState, Ctx, fr, layout};

/// The period asked for: `du` and `au` (dates, `au` included); by default the 30 days up to `today`.
pub fn period(q: &Fields, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), Errors> {
    let mut errors = Errors::default();
    let mut parse = |name: &str, label: &str, default: NaiveDate| match forms::value(q, name) {
        "" => Some(default),
        raw => match fr::parse_date(raw) {
            Some(d) => Some(d),
            None => {
                errors.add(
                    name,
                    label,
                    format!("« {label} » doit être une date au format jj/mm/aaaa, par exemple 01/11/2026."),
                );
                None
            }
        },
    };
    let from = parse("du", "Du", today - Duration::days(29));
    let to = parse("au", "Au (inclus)", today);
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            errors.add("au", "Au (inclus)", "La fin de la période doit suivre son début.");
        } else {
            return Ok((from, to));
        }
    }
    Err(errors)
}

/// Seconds as a French duration: `90` → `1 min 30 s`, `93_600` → `1 j 2 h`.
pub fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (days, hours, minutes, secs) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60, total % 60);
    if days > 0 {
        format!("{days}\u{a0}j {hours}\u{a0}h")
    } else if hours > 0 {
        format!("{hours}\u{a0}h {minutes:02}\u{a0}min")
    } else if minutes > 0 {
        format!("{minutes}\u{a0}min {secs:02}\u{a0}s")
    } else {
        format!("{secs}\u{a0}s")
    }
}

/// One table of counts (`rows` as the API gives them: `{key, count}`), labelled by `label`.
pub fn counts(caption: &str, header: &str, rows: &[Value], label: impl Fn(&str) -> String) -> String {
    if rows.is_empty() {
        return format!("<p>{} : aucune demande.</p>", esc(caption));
    }
    let mut out = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">{}</th><th scope="col" class="num">Demandes</th></tr></thead><tbody>"#,
        esc(caption),
        esc(header)
    );
    for row in rows {
        let key = s(row, "key");
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td class="num">{}</td></tr>"#,
            esc(&if key.is_empty() { "Non renseigné".to_owned() } else { label(key) }),
            fr::count(row["count"].as_u64().unwrap_or(0))
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The names the page shows instead of codes: providers by code, EPCIs by SIREN (each list read once per page).
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub providers: HashMap<String, String>,
    pub epcis: HashMap<String, String>,
}

impl Names {
    /// The EPCIs of the directory by SIREN, from one page of `GET /v1/collectivities?kind=epci`.
    pub fn epcis_of(page: &Value) -> HashMap<String, String> {
        items(page)
            .iter()
            .filter(|c| !s(c, "name").trim().is_empty())
            .map(|c| (s(c, "siren").to_owned(), s(c, "name").trim().to_owned()))
            .collect()
    }
}

/// `code` by its name in `names`, else as it comes.
fn named(names: &HashMap<String, String>, code: &str) -> String {
    names.get(code).cloned().unwrap_or_else(|| code.to_owned())
}

/// The page's body for one answer of the API (pure, for tests).
pub fn render(stats: &Value, names: &Names) -> String {
    let list = |key: &str| stats[key].as_array().map(Vec::as_slice).unwrap_or(&[]).to_vec();
    let median = |key: &str| match stats[key]["median_seconds"].as_f64() {
        Some(m) => {
            let n = stats[key]["count"].as_u64().unwrap_or(0);
            format!(
                "{} <span class=\"small\">(sur {} demande{})</span>",
                esc(&duration(m)),
                fr::count(n),
                if n > 1 { "s" } else { "" }
            )
        }
        None => "Pas encore de donnée".to_owned(),
    };
    let satisfaction = &stats["satisfaction"];
    let mean = match satisfaction["mean"].as_f64() {
        Some(m) => format!("{} sur 5", format!("{m:.1}").replace('.', ",")),
        None => "Pas encore d'avis".to_owned(),
    };
    let mut out = format!(
        r#"<h2>Vue d'ensemble</h2><dl class="facts"><dt>Demandes déposées</dt><dd>{total}</dd>
<dt>Délai médian jusqu'à la première réponse</dt><dd>{first}</dd>
<dt>Délai médian jusqu'à la fin de la prestation</dt><dd>{done}</dd>
<dt>Satisfaction moyenne</dt><dd>{mean} <span class="small">({count} avis)</span></dd></dl>
<h2>Répartition des demandes</h2>"#,
        total = fr::count(stats["total"].as_u64().unwrap_or(0)),
        first = median("time_to_first_answer"),
        done = median("time_to_completion"),
        count = fr::count(satisfaction["count"].as_u64().unwrap_or(0)),
    );
    out.push_str(&counts("Demandes par statut", "Statut", &list("by_status"), |k| fr::request_status(k).to_owned()));
    out.push_str(&counts("Demandes par catégorie d'offre", "Catégorie", &list("by_category"), |k| {
        fr::category(k).to_owned()
    }));
    out.push_str(&counts("Demandes par partenaire", "Partenaire", &list("by_provider"), |k| {
        named(&names.providers, k)
    }));
    out.push_str(&counts("Demandes par intercommunalité (EPCI)", "Intercommunalité", &list("by_epci"), |k| {
        named(&names.epcis, k)
    }));
    out.push_str(&counts(
        "Demandes par arrondissement",
        "Arrondissement",
        &list("by_arrondissement"),
        fr::arrondissement,
    ));
    let distribution = satisfaction["distribution"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push_str(r#"<h2>Satisfaction</h2><table><caption>Avis des collectivités par note</caption><thead><tr><th scope="col">Note</th><th scope="col" class="num">Avis</th></tr></thead><tbody>"#);
    for note in 1..=5usize {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{note} sur 5</th><td class="num">{}</td></tr>"#,
            fr::count(distribution.get(note - 1).and_then(Value::as_u64).unwrap_or(0))
        );
    }
    out.push_str("</tbody></table>");
    out
}

pub async fn page(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let today = fr::today();
    let (period, errors) = match period(&q, today) {
        Ok(p) => (Some(p), Errors::default()),
        Err(errors) => (None, errors),
    };
    // A date input takes an ISO value: a date typed jj/mm/aaaa is shown back that way.
    let shown = |name: &str, default: String| match forms::value(&q, name) {
        "" => default,
        v => fr::parse_date(v).map_or_else(|| v.to_owned(), |d| d.to_string()),
    };
    let mut body = format!(
        r#"{summary}<form method="get" action="/coordination/statistiques" class="form search" novalidate><fieldset><legend>Période (date de dépôt des demandes)</legend>{from}{to}</fieldset><button type="submit">Afficher</button></form>"#,
        summary = forms::summary(&errors),
        from = forms::field(
            "du",
            "Du",
            Input::Text { kind: "date", autocomplete: "off" },
            &shown("du", period.map(|p| p.0.to_string()).unwrap_or_default()),
            true,
            "Premier jour. Format : jj/mm/aaaa, par exemple 01/11/2026.",
            &errors
        ),
        to = forms::field(
            "au",
            "Au (inclus)",
            Input::Text { kind: "date", autocomplete: "off" },
            &shown("au", period.map(|p| p.1.to_string()).unwrap_or_default()),
            true,
            "Dernier jour, inclus. Format : jj/mm/aaaa.",
            &errors
        ),
    );
    let Some((from, to)) = period else {
        return layout::page_with_status(&ctx, StatusCode::BAD_REQUEST, "Statistiques des demandes", &body);
    };
    let path = format!(
        "/v1/statistics/requests?from={}&to={}",
        url_component(&from.to_string()),
        url_component(&to.to_string())
    );
    let epcis = "/v1/collectivities?kind=epci&limit=100";
    let (stats, providers, epcis) = tokio::join!(
        state.gateway.get(&path, Some(&token)),
        crate::pages::provider::provider_names(&state, &token),
        state.gateway.get(epcis, None),
    );
    let names = Names { providers, epcis: epcis.map(|page| Names::epcis_of(&page)).unwrap_or_default() };
    match stats {
        Ok(stats) => {
            let _ = write!(
                body,
                "<p>Demandes déposées du {} au {} inclus.</p>",
                esc(&fr::date(&from.to_string())),
                esc(&fr::date(&to.to_string()))
            );
            body.push_str(&render(&stats, &names));
            layout::page(&ctx, "Statistiques des demandes", &body)
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_period_defaults_to_thirty_days_and_is_checked() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        let (from, to) = period(&q(&[]), today).unwrap_or_default();
        assert_eq!((from.to_string().as_str(), to.to_string().as_str()), ("2026-10-31", "2026-11-29"));
        let (from, to) = period(&q(&[("du", "2026-01-01"), ("au", "2026-01-01")]), today).unwrap_or_default();
        assert_eq!(from, to, "one day is a period");
        let reversed = period(&q(&[("du", "2026-02-01"), ("au", "2026-01-01")]), today).err().unwrap_or_default();
        assert_eq!(reversed.of("au"), Some("La fin de la période doit suivre son début."));
        let garbage = period(&q(&[("du", "31/02/2026")]), today).err().unwrap_or_default();
        assert!(garbage.of("du").is_some_and(|m| m.contains("doit être une date au format jj/mm/aaaa")));
        let typed = period(&q(&[("du", "01/11/2026"), ("au", "2026-11-29")]), today).unwrap_or_default();
        assert_eq!(typed.0.to_string(), "2026-11-01", "jj/mm/aaaa as the hint says");
    }

    #[test]
    fn durations_are_french() {
        assert_eq!(duration(42.4), "42\u{a0}s");
        assert_eq!(duration(90.0), "1\u{a0}min 30\u{a0}s");
        assert_eq!(duration(7_500.0), "2\u{a0}h 05\u{a0}min");
        assert_eq!(duration(93_600.0), "1\u{a0}j 2\u{a0}h");
    }

    #[test]
    fn statistics_are_tables_with_captions_and_headers() {
        let stats = json!({
            "total": 3,
            "by_status": [{"key": "referred", "count": 2}, {"key": "completed", "count": 1}],
            "by_category": [{"key": "integrated_engineering", "count": 3}],
            "by_provider": [{"key": "caue77", "count": 3}, {"key": "inconnu", "count": 1}],
            "by_epci": [{"key": null, "count": 3}, {"key": "247700123", "count": 1_261}],
            "by_arrondissement": [{"key": "771", "count": 2}],
            "time_to_first_answer": {"count": 2, "median_seconds": 3600.0},
            "time_to_completion": {"count": 0, "median_seconds": null},
            "satisfaction": {"count": 1, "mean": 4.0, "distribution": [0, 0, 0, 1, 0]}
        });
        let names = Names {
            providers: [("caue77".to_owned(), "CAUE de Seine-et-Marne".to_owned())].into(),
            epcis: Names::epcis_of(&json!({"items": [{"siren": "247700123", "name": "CA du Pays de Meaux"}]})),
        };
        let html = render(&stats, &names);
        assert!(html.contains(r#"<th scope="row">CAUE de Seine-et-Marne</th><td class="num">3</td>"#));
        assert!(html.contains(r#"<th scope="row">inconnu</th>"#), "an unknown code as it comes");
        assert!(html.contains("<th scope=\"row\">CA du Pays de Meaux</th><td class=\"num\">1\u{202f}261</td>"));
        assert!(html.contains(r#"<th scope="row">Meaux</th><td class="num">2</td>"#), "arrondissement 771");
        assert!(!html.contains("247700123") && !html.contains("SIREN") && !html.contains(">771<"));
        assert!(html.contains("<caption>Demandes par statut</caption>"));
        assert!(html.contains(r#"<th scope="row">Orientée vers un partenaire</th><td class="num">2</td>"#));
        assert!(html.contains(r#"<th scope="row">Ingénierie intégrée</th>"#));
        assert!(html.contains(r#"<th scope="row">Non renseigné</th>"#));
        assert!(
            html.contains("1\u{a0}h 00\u{a0}min")
                && html.contains("(sur 2 demandes)")
                && html.contains("Pas encore de donnée")
        );
        assert!(html.contains("4,0 sur 5") && html.contains(r#"<th scope="row">4 sur 5</th><td class="num">1</td>"#));
    }
}
