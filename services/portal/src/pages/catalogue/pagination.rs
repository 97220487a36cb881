//! Page numbers: « Précédent », 1 2 3 … 9, « Suivant », as an accessible navigation landmark
//! (`nav aria-label="Pagination"`, the current page `aria-current="page"`).

use std::fmt::Write as _;

use crate::html::esc;

/// How many pages show on each side of the current one.
const AROUND: u32 = 2;

/// The numbers to show for page `current` of `pages`: the first, the last, and those around the current one;
/// `None` is a gap (« … »).
pub fn numbers(current: u32, pages: u32) -> Vec<Option<u32>> {
    let mut out = Vec::new();
    let mut last_shown = 0;
    for n in 1..=pages {
        if n == 1 || n == pages || n.abs_diff(current) <= AROUND {
            if n > last_shown + 1 {
                out.push(None);
            }
            out.push(Some(n));
            last_shown = n;
        }
    }
    out
}

/// The number of pages of `total` items by `size`.
pub fn page_count(total: u64, size: u64) -> u32 {
    u32::try_from(total.div_ceil(size.max(1))).unwrap_or(u32::MAX)
}

/// The navigation for page `current` of `pages` (nothing when there is one page); `href(n)` is page n's
/// address, already escaped for an attribute.
pub fn nav(current: u32, pages: u32, href: impl Fn(u32) -> String) -> String {
    if pages <= 1 {
        return String::new();
    }
    let mut out = String::from(r#"<nav class="pagination" aria-label="Pagination"><ul>"#);
    if current > 1 {
        let _ = write!(out, r#"<li><a href="{}" rel="prev">Précédent</a></li>"#, href(current - 1));
    }
    for number in numbers(current, pages) {
        match number {
            None => out.push_str(r#"<li><span aria-hidden="true">…</span></li>"#),
            Some(n) if n == current => {
                let _ = write!(
                    out,
                    r#"<li><a href="{}" aria-current="page"><span class="visually-hidden">Page </span>{n}</a></li>"#,
                    href(n)
                );
            }
            Some(n) => {
                let _ =
                    write!(out, r#"<li><a href="{}"><span class="visually-hidden">Page </span>{n}</a></li>"#, href(n));
            }
        }
    }
    if current < pages {
        let _ = write!(out, r#"<li><a href="{}" rel="next">Suivant</a></li>"#, href(current + 1));
    }
    out.push_str("</ul></nav>");
    out
}

/// A page number from a query parameter: 1 when absent or not a positive number.
pub fn parse(raw: &str) -> u32 {
    raw.trim().parse::<u32>().ok().filter(|n| *n >= 1).unwrap_or(1)
}

/// `?…&page=n` for a link: `base` is a query string (`?a=1`, escaped) or empty.
pub fn with_page(base: &str, n: u32) -> String {
    let page = if n <= 1 { String::new() } else { format!("page={n}") };
    match (base.is_empty(), page.is_empty()) {
        (_, true) => base.to_owned(),
        (true, false) => format!("?{page}"),
        (false, false) => format!("{base}{}", esc(&format!("&{page}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_the_last_and_the_neighbours_are_shown_with_gaps() {
        assert_eq!(numbers(1, 1), [Some(1)]);
        assert_eq!(numbers(1, 3), [Some(1), Some(2), Some(3)]);
        assert_eq!(numbers(1, 10), [Some(1), Some(2), Some(3), None, Some(10)]);
        assert_eq!(numbers(6, 10), [Some(1), None, Some(4), Some(5), Some(6), Some(7), Some(8), None, Some(10)]);
        assert_eq!(numbers(10, 10), [Some(1), None, Some(8), Some(9), Some(10)]);
        // No gap for a single missing number's neighbour: 1 then 2.
        assert_eq!(numbers(4, 7), [Some(1), Some(2), Some(3), Some(4), Some(5), Some(6), Some(7)]);
    }

    #[test]
    fn pages_are_counted_rounding_up() {
        assert_eq!(page_count(0, 20), 0);
        assert_eq!(page_count(20, 20), 1);
        assert_eq!(page_count(21, 20), 2);
        assert_eq!(page_count(122, 20), 7);
    }

    #[test]
    fn the_navigation_goes_both_ways_and_marks_the_current_page() {
        let html = nav(2, 3, |n| format!("/catalogue?q=eau&amp;page={n}"));
        assert!(html.starts_with(r#"<nav class="pagination" aria-label="Pagination"><ul>"#), "{html}");
        assert!(html.contains(r#"<a href="/catalogue?q=eau&amp;page=1" rel="prev">Précédent</a>"#), "{html}");
        assert!(html.contains(r#"<a href="/catalogue?q=eau&amp;page=3" rel="next">Suivant</a>"#), "{html}");
        assert!(
            html.contains(r#"<a href="/catalogue?q=eau&amp;page=2" aria-current="page"><span class="visually-hidden">Page </span>2</a>"#),
            "{html}"
        );
        assert_eq!(html.matches("aria-current").count(), 1);
        // No « Précédent » on the first page, no « Suivant » on the last, nothing for a single page.
        assert!(!nav(1, 3, |n| n.to_string()).contains("Précédent"));
        assert!(!nav(3, 3, |n| n.to_string()).contains("Suivant"));
        assert_eq!(nav(1, 1, |n| n.to_string()), "");
        assert!(nav(1, 10, |n| n.to_string()).contains("…"));
    }

    #[test]
    fn page_numbers_are_read_and_written() {
        assert_eq!((parse(""), parse("3"), parse("0"), parse("-2"), parse("x")), (1, 3, 1, 1, 1));
        assert_eq!(with_page("", 1), "");
        assert_eq!(with_page("", 2), "?page=2");
        assert_eq!(with_page("?q=eau", 1), "?q=eau");
        assert_eq!(with_page("?q=eau", 3), "?q=eau&amp;page=3");
    }
}
