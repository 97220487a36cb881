//! PostgreSQL's side of search: the published offers matching any term of a query (French stemming, accents
//! folded: `id77_french`), ranked by how many terms match then `ts_rank_cd`; typo correction by trigrams
//! only when nothing was found.

use sqlx::PgPool;

use super::expand::{self, SYNONYMS};
use crate::store::{OFFER_COLUMNS, SearchRow};

/// The published offers matching any term of `words` (a term: a word or a phrase of the synonym list, with
/// the other terms of its group), each ranked by the terms it matches, then (below 1) by `ts_rank_cd` of every
/// word as asked (so the user's own words weigh more than their synonyms) and of the whole query: an offer
/// matching more terms always comes first. No words (or only empty words PostgreSQL drops): every published
/// offer, rank 0. When nothing is found, each word unknown to the catalogue is replaced by its nearest known
/// word (trigrams) and the query is searched again: if that finds offers, every row's `corrected` is the
/// query as searched (the replaced words only; the others as asked, accents kept). A correctly spelled
/// accented word is never corrected: it finds its offers.
pub async fn search(pool: &PgPool, words: &[String]) -> Result<Vec<SearchRow>, sqlx::Error> {
    let rows = matching(pool, words).await?;
    if !rows.is_empty() || words.is_empty() {
        return Ok(rows);
    }
    let replaced = corrections(pool, words).await?;
    if replaced.iter().all(Option::is_none) {
        return Ok(rows);
    }
    let fixed: Vec<String> =
        words.iter().zip(replaced).map(|(word, fix)| fix.unwrap_or_else(|| word.clone())).collect();
    let mut rows = matching(pool, &fixed).await?;
    let corrected = fixed.join(" ");
    for row in &mut rows {
        row.corrected = Some(corrected.clone());
    }
    Ok(rows)
}

async fn matching(pool: &PgPool, words: &[String]) -> Result<Vec<SearchRow>, sqlx::Error> {
    let (texts, terms) = expand::alternatives(&SYNONYMS.expand(words));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH alt AS (
           SELECT g, phraseto_tsquery('id77_french', a) AS q FROM unnest($1::text[], $2::int[]) AS t(a, g)
         ), term AS (
           SELECT g, string_agg('(' || q::text || ')', ' | ')::tsquery AS q FROM alt WHERE numnode(q) > 0 GROUP BY g
         ), whole AS (
           SELECT count(*) AS n, coalesce(string_agg('(' || q::text || ')', ' | '), '')::tsquery AS q FROM term
         )
         SELECT {OFFER_COLUMNS},
           CASE WHEN whole.n = 0 THEN 0
                ELSE (SELECT count(*) FROM term WHERE offer.search @@ term.q)
                  + 0.7 * ts_rank_cd(offer.search, plainto_tsquery('id77_french', $3), 32)
                  + 0.3 * ts_rank_cd(offer.search, whole.q, 32)
           END::real AS rank,
           NULL::text AS corrected
         FROM offer, whole
         WHERE offer.status = 'published' AND (whole.n = 0 OR offer.search @@ whole.q)"
    )))
    .bind(texts)
    .bind(terms)
    .bind(words.join(" "))
    .fetch_all(pool)
    .await
}

/// For each word, its nearest word of the catalogue when it is not one (at least 4 letters, accents folded),
/// `None` when it is one or nothing is near.
async fn corrections(pool: &PgPool, words: &[String]) -> Result<Vec<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM search_word s WHERE s.word = f.w) OR length(f.w) < 4 THEN NULL
                ELSE (SELECT s.word FROM search_word s WHERE s.word % f.w
                      ORDER BY similarity(s.word, f.w) DESC, s.word LIMIT 1) END
         FROM (SELECT n, lower(unaccent(w)) AS w FROM unnest($1::text[]) WITH ORDINALITY AS t(w, n)) f
         ORDER BY f.n",
    )
    .bind(words)
    .fetch_all(pool)
    .await
}
