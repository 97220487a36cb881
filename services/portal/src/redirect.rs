//! Where the portal may send a browser on a target the browser chose (`suite` after login): a path of this
//! site, decided by what a URL parser would make of it, not by a string prefix.
//!
//! Browsers resolve a `Location` by the WHATWG URL Standard, which silently drops tabs and newlines anywhere
//! (`/<TAB>/evil.example` is `//evil.example`, another host), reads `\` as `/` (`/\evil.example`), and trims
//! leading and trailing C0 controls and spaces; some servers and proxies percent-decode once more
//! (`/%2f%2fevil.example`). So a target is accepted only when it is, both as sent and once decoded, an
//! absolute path of this origin: one leading `/` not followed by `/` or `\`, no backslash, no control
//! character, no whitespace and nothing outside visible ASCII. Everything else is refused (the caller then
//! uses its default page). The property test in tests/redirect.rs checks it against a WHATWG URL parser.

/// Longest target accepted (a page address with its query).
pub const MAX_TARGET_BYTES: usize = 2048;

/// How many rounds of percent-decoding are checked; a target still changing after them is refused.
const DECODE_ROUNDS: usize = 4;

/// `raw` when it is a safe same-origin path for a redirect, else `None`.
pub fn safe_redirect(raw: &str) -> Option<String> {
    if raw.len() > MAX_TARGET_BYTES || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut current = raw.as_bytes().to_vec();
    for _ in 0..DECODE_ROUNDS {
        if !is_local_path(&current) {
            return None;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return Some(raw.to_owned());
        }
        current = decoded;
    }
    None
}

/// One leading `/` (not `//`, not `/\`), no backslash, no control character or space anywhere. Bytes beyond
/// ASCII (from decoding) are allowed: browsers percent-encode them back.
fn is_local_path(target: &[u8]) -> bool {
    target.first() == Some(&b'/')
        && !matches!(target.get(1), Some(b'/' | b'\\'))
        && !target.iter().any(|&b| b == b'\\' || b <= b' ' || b == 0x7f)
        && !target.windows(2).any(|w| w == b"//")
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (input.get(i + 1).and_then(hex), input.get(i + 2).and_then(hex))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_kept_as_sent() {
        for good in ["/", "/demandes", "/demandes?statut=ouverte&page=2", "/demandes/r-1#conversation", "/a/b/../c"] {
            assert_eq!(safe_redirect(good).as_deref(), Some(good), "{good}");
        }
        assert_eq!(safe_redirect("/catalogue?q=%C3%A9cole").as_deref(), Some("/catalogue?q=%C3%A9cole"));
        assert_eq!(safe_redirect("/100%").as_deref(), Some("/100%"), "a lone % is not an escape");
    }

    #[test]
    fn anything_that_may_leave_the_site_is_refused() {
        for bad in [
            "",
            "demandes",
            "https://evil.example/",
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/\0/evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "\\/evil.example",
            " /demandes",
            "/demandes ",
            "/%2f/evil.example",
            "/%2F%2Fevil.example",
            "%2f%2fevil.example",
            "/%5cevil.example",
            "/%09/evil.example",
            "/%0a/evil.example",
            "/%00",
            "/%252f%252fevil.example",
            "/%25252f/evil.example",
            "/a//b",
            "/\u{3000}/evil.example",
            "/\u{ff0f}evil.example",
            "/é",
            "/\u{7f}",
        ] {
            assert_eq!(safe_redirect(bad), None, "{bad:?}");
        }
        assert_eq!(safe_redirect(&format!("/{}", "a".repeat(MAX_TARGET_BYTES))), None, "too long");
    }
}
