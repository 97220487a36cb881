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
}
