//! Conversation rules, free of I/O: who writes as what, message and file name validation, and the checks an
//! attachment passes while it streams in (type by magic bytes, size, UTF-8 for text, SHA-256, chunking).

use id77_platform::ServiceError;
use id77_platform::auth::{Caller, Role};
use sha2::{Digest, Sha256};

use crate::access::RequestFacts;
use crate::error::ConversationError;

/// Longest message body, in characters.
pub const MAX_BODY_CHARS: usize = 5_000;
/// Longest attachment file name, in characters.
pub const MAX_FILENAME_CHARS: usize = 200;
/// Largest attachment, in bytes (10 MiB).
pub const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
/// Size of the stored chunks (and of the download chunks), in bytes.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// How many leading bytes decide the type (an ODF file names its type at offset 38).
pub const SNIFF_BYTES: usize = 128;
/// Characters of the body an event carries.
pub const EXCERPT_CHARS: usize = 200;

/// Statuses in which the provider a request was referred to no longer takes part in its thread: it declined,
/// the referral was withdrawn (the member cancelled) or expired, or the request went back to triage. Its agents
/// then lose access to the whole thread, old messages included (docs/authorization.md). A re-route changes the request's
/// provider, which ends the previous provider's access the same way.
pub const PROVIDER_LEFT: [&str; 5] = ["declined", "cancelled", "withdrawn", "expired", "triage"];

/// The provider whose agents take part in the thread, given the request's provider and status.
pub fn participating_provider<'a>(provider_code: Option<&'a str>, status: &str) -> Option<&'a str> {
    provider_code.filter(|p| !p.is_empty() && !PROVIDER_LEFT.contains(&status))
}

/// The role a caller writes as on a request's thread: what gives it access, member first.
pub fn author_role(caller: &Caller, facts: &RequestFacts<'_>) -> Role {
    if caller.belongs_to_member(facts.member_id) {
        if caller.has(Role::MemberAdmin) { Role::MemberAdmin } else { Role::MemberUser }
    } else if facts.provider_code.is_some_and(|p| caller.is_agent_of(p)) {
        Role::ProviderAgent
    } else if caller.has(Role::Referent) && facts.referent == Some(caller.user_id) {
        Role::Referent
    } else {
        Role::Coordinator
    }
}

/// The name a message shows for its author: `known` (its display name, else its e-mail address:
/// [`crate::notify::name_of`]), or its role when nothing is known. Stored with the message: a message keeps the
/// name it was written under.
pub fn author_name(known: &str, role: Role) -> String {
    if known.trim().is_empty() { role.as_str().to_owned() } else { known.trim().to_owned() }
}

/// A message body: trimmed, at most [`MAX_BODY_CHARS`]; required unless the message carries an attachment.
pub fn body(raw: &str, required: bool) -> Result<String, ServiceError> {
    let body = raw.trim();
    if required && body.is_empty() {
        return Err(ServiceError::invalid("body", "is required"));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(ServiceError::invalid("body", &format!("must be at most {MAX_BODY_CHARS} characters")));
    }
    if body.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ServiceError::invalid("body", "must not contain control characters"));
    }
    Ok(body.to_owned())
}

/// The start of a body, for events and notifications.
pub fn excerpt(body: &str) -> String {
    body.chars().take(EXCERPT_CHARS).collect()
}

/// A file name: its last path component, trimmed, 1 to [`MAX_FILENAME_CHARS`] characters, no control
/// characters and no quotes (it ends up in a `Content-Disposition` header).
pub fn filename(raw: &str) -> Result<String, ServiceError> {
    let name = raw.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if name.is_empty() || name == "." || name == ".." {
        return Err(ServiceError::invalid("filename", "is required"));
    }
    if name.chars().count() > MAX_FILENAME_CHARS {
        return Err(ServiceError::invalid("filename", &format!("must be at most {MAX_FILENAME_CHARS} characters")));
    }
    if name.chars().any(|c| c.is_control() || c == '"') {
        return Err(ServiceError::invalid("filename", "must not contain control characters or quotes"));
    }
    Ok(name.to_owned())
}

/// The attachment types allowed on a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pdf,
    Png,
    Jpeg,
    Odt,
    Ods,
    Docx,
    Xlsx,
    Text,
}

impl FileKind {
    pub const ALL: [Self; 8] =
        [Self::Pdf, Self::Png, Self::Jpeg, Self::Odt, Self::Ods, Self::Docx, Self::Xlsx, Self::Text];

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Odt => "application/vnd.oasis.opendocument.text",
            Self::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Text => "text/plain",
        }
    }

    /// The kind of a declared media type (parameters and case ignored; `image/jpg` is JPEG).
    pub fn from_declared(declared: &str) -> Option<Self> {
        let essence = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if essence == "image/jpg" {
            return Some(Self::Jpeg);
        }
        Self::ALL.into_iter().find(|k| k.content_type() == essence)
    }

    /// Whether the file's first bytes are those of this kind. `head` holds the first [`SNIFF_BYTES`] bytes (or
    /// the whole file when shorter). Text is checked as it streams (UTF-8, no NUL), not here, beyond refusing
    /// the binary signatures.
    pub fn matches(self, head: &[u8]) -> bool {
        const ZIP: &[u8] = b"PK\x03\x04";
        // An ODF package stores an uncompressed `mimetype` entry first: its name at offset 30, the type after.
        let odf = |kind: &str| {
            head.starts_with(ZIP)
                && head.get(30..38) == Some(b"mimetype".as_slice())
                && head.get(38..).is_some_and(|rest| rest.starts_with(kind.as_bytes()))
        };
        let is_odf = head.get(30..38) == Some(b"mimetype".as_slice());
        match self {
            Self::Pdf => head.starts_with(b"%PDF-"),
            Self::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            Self::Jpeg => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            Self::Odt => odf(Self::Odt.content_type()),
            Self::Ods => odf(Self::Ods.content_type()),
            // OOXML is a ZIP package without ODF's leading `mimetype` entry.
            Self::Docx | Self::Xlsx => head.starts_with(ZIP) && !is_odf,
            Self::Text => {
                !(head.starts_with(b"%PDF-")
                    || head.starts_with(b"\x89PNG")
                    || head.starts_with(&[0xFF, 0xD8, 0xFF])
                    || head.starts_with(ZIP))
            }
        }
    }
}

fn not_allowed(declared: &str) -> ServiceError {
    let allowed: Vec<_> = FileKind::ALL.iter().map(|k| k.content_type()).collect();
    ConversationError::TypeNotAllowed { declared: declared.to_owned(), allowed: allowed.join(", ") }.into()
}

fn mismatch(kind: FileKind) -> ServiceError {
    ConversationError::ContentMismatch(kind.content_type()).into()
}

/// The error of a file over [`MAX_ATTACHMENT_BYTES`].
pub fn too_large() -> ServiceError {
    ConversationError::TooLarge { max_bytes: MAX_ATTACHMENT_BYTES }.into()
}

/// An attachment being received: fed the bytes as they arrive, it refuses a file as soon as it is too large or
/// its content does not match its declared type, and hands back chunks of [`CHUNK_BYTES`] to store.
#[derive(Debug)]
pub struct Upload {
    kind: FileKind,
    total: u64,
    checked: bool,
    pending: Vec<u8>,
    /// Bytes of an incomplete UTF-8 sequence at the end of the text received so far.
    utf8_tail: Vec<u8>,
    hasher: Sha256,
}

/// A fully received, accepted attachment.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    /// The last chunk (possibly empty when the size is a multiple of [`CHUNK_BYTES`]).
    pub last_chunk: Vec<u8>,
    pub size_bytes: u64,
    pub sha256: String,
}

impl Upload {
    /// Starts receiving a file of the declared type.
    pub fn new(declared: &str) -> Result<Self, ServiceError> {
        let kind = FileKind::from_declared(declared).ok_or_else(|| not_allowed(declared))?;
        Ok(Self { kind, total: 0, checked: false, pending: Vec::new(), utf8_tail: Vec::new(), hasher: Sha256::new() })
    }

    pub fn kind(&self) -> FileKind {
        self.kind
    }

    /// Takes the next bytes; returns the chunks now complete, to store in order.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<Vec<u8>>, ServiceError> {
        self.total += data.len() as u64;
        if self.total > MAX_ATTACHMENT_BYTES {
            return Err(too_large());
        }
        if self.kind == FileKind::Text {
            self.check_text(data, false)?;
        }
        self.hasher.update(data);
        self.pending.extend_from_slice(data);
        if !self.checked && self.pending.len() >= SNIFF_BYTES {
            self.sniff()?;
        }
        let mut chunks = Vec::new();
        while self.checked && self.pending.len() >= CHUNK_BYTES {
            let rest = self.pending.split_off(CHUNK_BYTES);
            chunks.push(std::mem::replace(&mut self.pending, rest));
        }
        Ok(chunks)
    }

    /// Ends the file: checks what could not be checked before (a short file's type, a text's last character).
    pub fn finish(mut self) -> Result<Received, ServiceError> {
        if self.total == 0 {
            return Err(ConversationError::Empty.into());
        }
        if !self.checked {
            self.sniff()?;
        }
        if self.kind == FileKind::Text {
            self.check_text(&[], true)?;
        }
        let sha256 = self.hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Received { last_chunk: self.pending, size_bytes: self.total, sha256 })
    }

    fn sniff(&mut self) -> Result<(), ServiceError> {
        let head = &self.pending[..self.pending.len().min(SNIFF_BYTES)];
        if !self.kind.matches(head) {
            return Err(mismatch(self.kind));
        }
        self.checked = true;
        Ok(())
    }

    /// Plain text must be UTF-8 without NUL bytes; a character may straddle two pushes.
    fn check_text(&mut self, data: &[u8], end: bool) -> Result<(), ServiceError> {
        if data.contains(&0) {
            return Err(mismatch(FileKind::Text));
        }
        let mut bytes = std::mem::take(&mut self.utf8_tail);
        bytes.extend_from_slice(data);
        match std::str::from_utf8(&bytes) {
            Ok(_) => Ok(()),
            // Incomplete sequence at the end: keep it for the next push, unless the file ended.
            Err(e) if e.error_len().is_none() && !end => {
                self.utf8_tail = bytes[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(_) => Err(mismatch(FileKind::Text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use id77_platform::auth::Role;
    use uuid::Uuid;

    fn odf(kind: &str) -> Vec<u8> {
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.resize(30, 0);
        bytes.extend_from_slice(b"mimetype");
        bytes.extend_from_slice(kind.as_bytes());
        bytes.extend_from_slice(&[0u8; 200]);
        bytes
    }

    fn receive(declared: &str, content: &[u8], piece: usize) -> Result<(Vec<Vec<u8>>, Received), ServiceError> {
        let mut upload = Upload::new(declared)?;
        let mut chunks = Vec::new();
        for part in content.chunks(piece.max(1)) {
            chunks.extend(upload.push(part)?);
        }
        let received = upload.finish()?;
        Ok((chunks, received))
    }

    fn reason(result: Result<(Vec<Vec<u8>>, Received), ServiceError>) -> String {
        result.err().map(|e| e.reason.into_owned()).unwrap_or_default()
    }

    #[test]
    fn each_allowed_type_is_recognised_by_its_first_bytes() {
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
        let zip = b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0[Content_Types].xml".to_vec();
        let cases: [(&str, Vec<u8>); 8] = [
            ("application/pdf", pdf.clone()),
            ("image/png", png.clone()),
            ("image/jpeg", jpeg.clone()),
            ("application/vnd.oasis.opendocument.text", odf("application/vnd.oasis.opendocument.text")),
            ("application/vnd.oasis.opendocument.spreadsheet", odf("application/vnd.oasis.opendocument.spreadsheet")),
            ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", zip.clone()),
            ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", zip.clone()),
            ("text/plain; charset=utf-8", "Compte rendu de la réunion\n".as_bytes().to_vec()),
        ];
        for (declared, content) in &cases {
            assert!(receive(declared, content, 3).is_ok(), "{declared}");
        }
        // Every other pairing is refused as a mismatch (DOCX and XLSX are both plain OOXML packages).
        for (declared, _) in &cases {
            for (other, content) in &cases {
                if declared == other || (declared.contains("openxml") && other.contains("openxml")) {
                    continue;
                }
                let result = receive(declared, content, 7);
                assert_eq!(reason(result), "ATTACHMENT_CONTENT_MISMATCH", "{other} content declared as {declared}");
            }
        }
        assert_eq!(FileKind::from_declared("IMAGE/JPG"), Some(FileKind::Jpeg));
    }

    #[test]
    fn other_types_are_refused_before_any_byte() {
        for declared in ["application/zip", "text/html", "application/x-msdownload", ""] {
            assert_eq!(
                Upload::new(declared).err().map(|e| e.reason.into_owned()).as_deref(),
                Some("ATTACHMENT_TYPE_NOT_ALLOWED")
            );
        }
    }

    #[test]
    fn a_renamed_executable_is_refused_by_its_bytes() {
        let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0".repeat(20);
        assert_eq!(reason(receive("application/pdf", &exe, 1)), "ATTACHMENT_CONTENT_MISMATCH");
        assert_eq!(reason(receive("text/plain", &exe, 1000)), "ATTACHMENT_CONTENT_MISMATCH");
    }

    #[test]
    fn text_must_be_utf8_even_across_pushes() {
        let text = "Été à Meaux — ça marche.\n".repeat(50);
        // One byte at a time splits every multi-byte character.
        assert!(receive("text/plain", text.as_bytes(), 1).is_ok());
        let mut latin1 = text.into_bytes();
        latin1.push(0xE9);
        assert_eq!(reason(receive("text/plain", &latin1, 5)), "ATTACHMENT_CONTENT_MISMATCH");
        // A cut character at the very end.
        let cut = &"é".as_bytes()[..1];
        assert_eq!(reason(receive("text/plain", cut, 1)), "ATTACHMENT_CONTENT_MISMATCH");
    }

    #[test]
    fn size_is_limited_while_streaming_and_chunks_are_256_kib() {
        let mut upload = Upload::new("application/pdf").expect("pdf allowed");
        let mut first = b"%PDF-1.4\n".to_vec();
        first.resize(CHUNK_BYTES + 10, b'x');
        let chunks = upload.push(&first).expect("first push");
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [CHUNK_BYTES]);
        let mut refused = None;
        for _ in 0..40 {
            match upload.push(&vec![b'x'; CHUNK_BYTES]) {
                Ok(chunks) => assert!(chunks.iter().all(|c| c.len() == CHUNK_BYTES)),
                Err(e) => {
                    refused = Some(e.reason.into_owned());
                    break;
                }
            }
        }
        assert_eq!(refused.as_deref(), Some("ATTACHMENT_TOO_LARGE"));
        // Exactly the limit is fine.
        let mut exact = b"%PDF-".to_vec();
        exact.resize(MAX_ATTACHMENT_BYTES as usize, b'y');
        let (chunks, received) = receive("application/pdf", &exact, 100_000).expect("10 MiB exactly");
        assert_eq!(chunks.len() * CHUNK_BYTES + received.last_chunk.len(), exact.len());
        assert_eq!(received.size_bytes, MAX_ATTACHMENT_BYTES);
    }

    #[test]
    fn sha256_and_content_survive_any_split() {
        let content: Vec<u8> = b"%PDF-1.5\n".iter().copied().chain((0..600_000u32).map(|i| (i % 251) as u8)).collect();
        let (chunks, received) = receive("application/pdf", &content, 70_001).expect("accepted");
        let mut back: Vec<u8> = chunks.concat();
        back.extend_from_slice(&received.last_chunk);
        assert_eq!(back, content);
        let expected: String = Sha256::digest(&content).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(received.sha256, expected);
        assert_eq!(reason(receive("application/pdf", b"", 1)), "ATTACHMENT_EMPTY");
    }

    #[test]
    fn bodies_and_filenames_are_checked() {
        assert_eq!(body("  Bonjour  ", true).ok().as_deref(), Some("Bonjour"));
        assert!(body("  ", true).is_err());
        assert_eq!(body("", false).ok().as_deref(), Some(""));
        assert!(body(&"é".repeat(MAX_BODY_CHARS), true).is_ok());
        assert!(body(&"é".repeat(MAX_BODY_CHARS + 1), true).is_err());
        assert!(body("a\u{0}b", true).is_err());
        assert_eq!(filename("C:\\Users\\x\\plan masse.pdf").ok().as_deref(), Some("plan masse.pdf"));
        assert_eq!(filename("../../etc/passwd").ok().as_deref(), Some("passwd"));
        for bad in ["", "dir/", "..", "a\"b.pdf", "a\nb.pdf"] {
            assert!(filename(bad).is_err(), "{bad:?}");
        }
        assert!(filename(&"n".repeat(MAX_FILENAME_CHARS + 1)).is_err());
        assert_eq!(excerpt(&"é".repeat(300)).chars().count(), EXCERPT_CHARS);
    }

    #[test]
    fn providers_leave_the_thread_when_their_referral_ends() {
        for status in ["referred", "accepted", "in_progress", "completed", "closed"] {
            assert_eq!(participating_provider(Some("caue77"), status), Some("caue77"), "{status}");
        }
        for status in PROVIDER_LEFT {
            assert_eq!(participating_provider(Some("caue77"), status), None, "{status}");
        }
        assert_eq!(participating_provider(None, "referred"), None);
        assert_eq!(participating_provider(Some(""), "referred"), None);
    }

    #[test]
    fn authors_write_as_the_role_that_gives_them_access() {
        let member = Uuid::from_u128(1);
        let referent = Uuid::from_u128(9);
        let facts = RequestFacts { member_id: member, provider_code: Some("caue77"), referent: Some(referent) };
        let caller = |role: Role, member_id: Option<Uuid>, provider: Option<&str>, user: Uuid| Caller {
            user_id: user,
            roles: vec![role],
            member_id,
            provider_code: provider.map(str::to_owned),
            email: String::new(),
            session: String::new(),
            name: String::new(),
        };
        let someone = Uuid::from_u128(5);
        assert_eq!(author_role(&caller(Role::MemberAdmin, Some(member), None, someone), &facts), Role::MemberAdmin);
        assert_eq!(author_role(&caller(Role::MemberUser, Some(member), None, someone), &facts), Role::MemberUser);
        assert_eq!(
            author_role(&caller(Role::ProviderAgent, None, Some("caue77"), someone), &facts),
            Role::ProviderAgent
        );
        assert_eq!(author_role(&caller(Role::Referent, None, None, referent), &facts), Role::Referent);
        assert_eq!(author_role(&caller(Role::Coordinator, None, None, someone), &facts), Role::Coordinator);
        let mut named = caller(Role::Coordinator, None, None, someone);
        assert_eq!(author_name(named.display_name(), Role::Coordinator), "coordinator");
        named.email = "guichet@id77.fr".into();
        assert_eq!(author_name(named.display_name(), Role::Coordinator), "guichet@id77.fr");
        named.name = " Claire Martin ".into();
        assert_eq!(author_name(named.display_name(), Role::Coordinator), "Claire Martin", "a name, not an address");
    }
}
