//! HTML building: plain functions and one escaping rule. Every piece of text that did not come from this crate's
//! own literals goes through [`esc`] (text and attribute values alike: `&`, `<`, `>`, `"` and `'` are escaped,
//! which is safe in element content and in quoted attribute values). URLs built from data go through
//! [`url_component`].

use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newlines have no place in a page.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a value for a path segment or a query component (RFC 3986 unreserved characters kept).
pub fn url_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A query string (`?a=1&b=2`, escaped for an attribute) from the non-empty pairs; empty when none.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", url_component(k), url_component(v)))
        .collect();
    if parts.is_empty() { String::new() } else { esc(&format!("?{}", parts.join("&"))) }
}

/// `&key=value` (value percent-encoded) to append to a URL that has a query already; empty for an empty value.
/// For URLs the portal calls, not for HTML attributes (no escaping of `&`).
pub fn query_tail(key: &str, value: &str) -> String {
    if value.is_empty() { String::new() } else { format!("&{}={}", url_component(key), url_component(value)) }
}

/// Multi-line text as paragraphs-friendly HTML (escaped, line breaks kept).
pub fn multiline(text: &str) -> String {
    esc(text).replace("\r\n", "\n").replace('\n', "<br>")
}

/// `<option>` elements; `selected` marks the current value.
pub fn options(items: &[(String, String)], selected: &str) -> String {
    let mut out = String::new();
    for (value, label) in items {
        let sel = if value == selected { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{}"{sel}>{}</option>"#, esc(value), esc(label));
    }
    out
}

/// Labels every data cell of the tables in `html` with its column header (`<td data-label="Statut">`), so that the
/// stylesheet can show tables as stacked lists on phones (`td::before { content: attr(data-label) }`). The headers
/// are the `<th>` of each table's `<thead>` (their text, tags dropped, already escaped); a cell that has a label
/// already, or whose column has no header, is left as is; `colspan` is counted. Only this crate's own markup can
/// contain `<td` or `<th`: text from data is escaped.
pub fn label_cells(html: &str) -> String {
    if !html.contains("<td") {
        return html.to_owned();
    }
    let mut out = String::with_capacity(html.len() + html.len() / 8);
    let mut headers: Vec<String> = Vec::new();
    let (mut in_head, mut column, mut rest) = (false, 0usize, html);
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        let tag = &rest[..end];
        let name: String = tag[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let span = colspan(tag);
        match name.as_str() {
            "table" => headers.clear(),
            "thead" => in_head = true,
            "/thead" => in_head = false,
            "tr" => column = 0,
            "th" if in_head => {
                let close = rest.find("</th>").unwrap_or(rest.len());
                let label = text_of(&rest[end.min(close)..close]);
                headers.extend(std::iter::repeat_n(label, span));
            }
            "th" => column += span,
            "td" => {
                if !in_head
                    && !tag.contains("data-label=")
                    && let Some(label) = headers.get(column).filter(|l| !l.is_empty())
                {
                    out.push_str("<td data-label=\"");
                    out.push_str(label);
                    out.push('"');
                    out.push_str(&tag[3..]);
                    rest = &rest[end..];
                    column += span;
                    continue;
                }
                column += span;
            }
            _ => {}
        }
        out.push_str(tag);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The `colspan` of a cell's opening tag (1 when absent or unreadable).
fn colspan(tag: &str) -> usize {
    tag.split_once("colspan=\"")
        .and_then(|(_, tail)| tail.split('"').next())
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=100).contains(n))
        .unwrap_or(1)
}

/// The text of an HTML fragment: tags dropped, white space collapsed (entities kept: the text stays escaped).
fn text_of(fragment: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(esc(r#"<script>alert("x")</script>"#), "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
        assert_eq!(esc("l'école & la mairie"), "l&#39;école &amp; la mairie");
        assert_eq!(esc("\" onfocus=\"x"), "&quot; onfocus=&quot;x");
        assert_eq!(esc("déjà échu — ça va"), "déjà échu — ça va", "non-ASCII text is kept as is");
        assert_eq!(esc("a\u{0}b\u{1b}c\nd"), "abc\nd", "control characters are dropped, newlines kept");
        // Escaping is not idempotent on purpose: already escaped text is shown as typed.
        assert_eq!(esc("&amp;"), "&amp;amp;");
    }

    #[test]
    fn url_components_and_queries_are_encoded() {
        assert_eq!(url_component("eau potable/é&x=1"), "eau%20potable%2F%C3%A9%26x%3D1");
        assert_eq!(url_component("abc-_.~09"), "abc-_.~09");
        assert_eq!(
            query(&[("q", "voirie & eau"), ("category", ""), ("theme", "\"x\"")]),
            "?q=voirie%20%26%20eau&amp;theme=%22x%22"
        );
        assert_eq!(query(&[("q", "")]), "");
        assert_eq!(query_tail("cursor", "a+b/c="), "&cursor=a%2Bb%2Fc%3D");
        assert_eq!(query_tail("cursor", ""), "");
    }

    #[test]
    fn multiline_and_options_escape_their_content() {
        assert_eq!(multiline("a<b\nc"), "a&lt;b<br>c");
        let items = vec![("x\"y".to_owned(), "<b>".to_owned()), ("z".to_owned(), "Z".to_owned())];
        assert_eq!(
            options(&items, "z"),
            r#"<option value="x&quot;y">&lt;b&gt;</option><option value="z" selected>Z</option>"#
        );
    }
    #[test]
    fn table_cells_are_labelled_with_their_column_header() {
        let table = r#"<table><caption>C</caption><thead><tr><th scope="col">Objet</th><th scope="col" class="num">Montant <abbr title="hors taxes">HT</abbr></th><th scope="col">L&#39;état</th></tr></thead><tbody><tr><th scope="row">A &lt;td&gt;</th><td class="num">12</td><td>ok</td></tr><tr><td>x</td><td colspan="2">y</td></tr></tbody></table>"#;
        let html = label_cells(table);
        assert!(html.contains(r#"<th scope="row">A &lt;td&gt;</th><td data-label="Montant HT" class="num">12</td><td data-label="L&#39;état">ok</td>"#), "{html}");
        assert!(
            html.contains(r#"<td data-label="Objet">x</td><td data-label="Montant HT" colspan="2">y</td>"#),
            "{html}"
        );
        assert_eq!(html.matches("data-label").count(), 4);
        // A second table has its own headers; a cell already labelled, or in a table without head, is kept.
        let two = format!(
            r#"{table}<table><thead><tr><th>Date</th></tr></thead><tbody><tr><td data-label="Jour">1</td></tr></tbody></table><table><tr><td>z</td></tr></table>"#
        );
        let html = label_cells(&two);
        assert!(html.contains(r#"<td data-label="Jour">1</td>"#) && html.ends_with("<tr><td>z</td></tr></table>"));
        assert_eq!(label_cells("<p>pas de tableau</p>"), "<p>pas de tableau</p>");
        assert_eq!(label_cells("<td"), "<td", "a truncated fragment is copied as is");
    }
}
