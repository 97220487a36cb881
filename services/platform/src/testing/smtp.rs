//! A small real SMTP server that keeps the mails it receives: tests point a service's `ID77_SMTP_URL` at it and
//! assert the mails arrive (recipient, subject, body). Speaks enough of RFC 5321 for lettre and most clients:
//! greeting, EHLO/HELO, MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP, QUIT; no TLS, no AUTH.
//! `make run` uses it too (`id77-smtp-sink`), writing each mail under a folder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Largest mail accepted (bytes).
const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Longest command line accepted.
const MAX_LINE_BYTES: usize = 4096;

/// A mail as received: the envelope and the raw message (headers and body, CRLF line ends, unstuffed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

impl ReceivedMail {
    /// The headers, unfolded: (name, value) in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push_str(line);
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        headers
    }

    /// A header's value (first of that name, any case), RFC 2047 encoded-words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers().into_iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| decode_words(&v))
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body, its `Content-Transfer-Encoding` (quoted-printable, base64, 7bit/8bit) undone.
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        let encoding = self.header("Content-Transfer-Encoding").unwrap_or_default().to_ascii_lowercase();
        let bytes = match encoding.trim() {
            "quoted-printable" => decode_quoted_printable(raw),
            "base64" => {
                let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD.decode(compact).unwrap_or_default()
            }
            _ => raw.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
    }
}

/// Undoes quoted-printable (RFC 2045 §6.7): `=XX` bytes and `=` soft line breaks.
pub fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded-words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`); whitespace between two of them goes.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some(start) = rest.find("=?") {
            let (before, from) = rest.split_at(start);
            let word = from[2..].split_once("?=").and_then(|(inner, after)| {
                let mut parts = inner.splitn(3, '?');
                let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
                let bytes = match encoding.to_ascii_lowercase().as_str() {
                    "b" => base64::engine::general_purpose::STANDARD.decode(text).ok()?,
                    "q" => decode_quoted_printable(&text.replace('_', " ")),
                    _ => return None,
                };
                Some((String::from_utf8_lossy(&bytes).into_owned(), after))
            });
            match word {
                Some((decoded, after)) => {
                    if !(last_was_word && before.trim().is_empty()) {
                        out.push_str(&pending_space);
                        out.push_str(before);
                    }
                    pending_space.clear();
                    out.push_str(&decoded);
                    last_was_word = true;
                    rest = after;
                }
                None => {
                    out.push_str(&pending_space);
                    pending_space.clear();
                    out.push_str(&rest[..start + 2]);
                    last_was_word = false;
                    rest = &rest[start + 2..];
                }
            }
        } else {
            out.push_str(rest);
            break;
        }
    }
    out
}

/// A running sink. Stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    mails: Arc<Mutex<Vec<ReceivedMail>>>,
    stop: CancellationToken,
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, None).await
    }

    /// Listens on `addr`; with `dir`, also writes each mail there as `<n>.eml`.
    pub async fn start_on(addr: SocketAddr, dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let mails = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
        }
        let (kept, stopping) = (mails.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopping.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                let (kept, dir) = (kept.clone(), dir.clone());
                tokio::spawn(async move {
                    if let Err(error) = session(stream, kept, dir).await {
                        tracing::debug!(%error, "smtp sink session ended");
                    }
                });
            }
        });
        Ok(Self { addr, mails, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:<port>`, for `ID77_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The mails to `address` (envelope recipient, any case).
    pub fn mails_to(&self, address: &str) -> Vec<ReceivedMail> {
        self.mails().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address))).collect()
    }

    /// Waits until `count` mails to `address` whose subject contains `subject` arrived (or `limit` passed) and
    /// returns those received.
    pub async fn wait_for(&self, address: &str, subject: &str, count: usize, limit: Duration) -> Vec<ReceivedMail> {
        let started = Instant::now();
        loop {
            let found: Vec<_> = self.mails_to(address).into_iter().filter(|m| m.subject().contains(subject)).collect();
            if found.len() >= count || started.elapsed() > limit {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// `<a@b>` (and `<a@b> SIZE=...`) → `a@b`.
fn path_of(argument: &str) -> String {
    let argument = argument.trim();
    match (argument.find('<'), argument.find('>')) {
        (Some(open), Some(close)) if close > open => argument[open + 1..close].trim().to_owned(),
        _ => argument.split_whitespace().next().unwrap_or_default().to_owned(),
    }
}

async fn session(stream: TcpStream, mails: Arc<Mutex<Vec<ReceivedMail>>>, dir: Option<PathBuf>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 id77-smtp-sink ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader).take(MAX_LINE_BYTES as u64).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let verb = text.split([' ', ':']).next().unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-id77-smtp-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 id77-smtp-sink\r\n",
            "MAIL" => {
                // `MAIL FROM:<a@b>`: the argument after the verb starts with `FROM:`.
                let argument = text[4..].trim_start();
                match argument.get(..5).filter(|p| p.eq_ignore_ascii_case("FROM:")) {
                    Some(_) => {
                        from = Some(path_of(&argument[5..]));
                        to.clear();
                        b"250 OK\r\n"
                    }
                    None => b"501 Syntax: MAIL FROM:<address>\r\n",
                }
            }
            "RCPT" => {
                let argument = text[4..].trim_start();
                match (argument.get(..3).filter(|p| p.eq_ignore_ascii_case("TO:")), &from) {
                    (Some(_), Some(_)) => {
                        to.push(path_of(&argument[3..]));
                        b"250 OK\r\n"
                    }
                    (None, _) => b"501 Syntax: RCPT TO:<address>\r\n",
                    (_, None) => b"503 MAIL first\r\n",
                }
            }
            "DATA" => {
                if from.is_none() || to.is_empty() {
                    write.write_all(b"503 RCPT first\r\n").await?;
                    continue;
                }
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut data = String::new();
                let mut too_big = false;
                loop {
                    line.clear();
                    let n = (&mut reader).take(MAX_MESSAGE_BYTES as u64).read_until(b'\n', &mut line).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    let text = String::from_utf8_lossy(&line);
                    let content = text.trim_end_matches(['\r', '\n']);
                    if content == "." {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 §4.5.2).
                    let content = content.strip_prefix('.').unwrap_or(content);
                    if data.len() + content.len() > MAX_MESSAGE_BYTES {
                        too_big = true;
                        continue;
                    }
                    data.push_str(content);
                    data.push_str("\r\n");
                }
                if too_big {
                    write.write_all(b"552 Message too big\r\n").await?;
                } else {
                    let mail =
                        ReceivedMail { from: from.take().unwrap_or_default(), to: std::mem::take(&mut to), data };
                    if let Some(dir) = &dir {
                        let count = mails.lock().map(|m| m.len()).unwrap_or_default();
                        let file = dir.join(format!("{:05}.eml", count + 1));
                        if let Err(error) = std::fs::write(&file, &mail.data) {
                            tracing::warn!(%error, file = %file.display(), "smtp sink could not write a mail");
                        }
                        tracing::info!(to = ?mail.to, subject = %mail.subject(), file = %file.display(), "mail received");
                    }
                    if let Ok(mut kept) = mails.lock() {
                        kept.push(mail);
                    }
                    write.write_all(b"250 OK queued\r\n").await?;
                }
                continue;
            }
            "RSET" => {
                from = None;
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.ok();
            all.push_str(&line);
            // The last line of a reply has a space after the code.
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                break;
            }
        }
        assert!(all.starts_with(code), "expected {code}, got {all:?}");
        all
    }

    #[tokio::test]
    async fn a_dialogue_delivers_an_unstuffed_mail_and_rset_forgets_the_envelope() -> anyhow::Result<()> {
        let sink = SmtpSink::start().await?;
        let (read, mut write) = TcpStream::connect(sink.addr()).await?.into_split();
        let mut reader = BufReader::new(read);
        expect(&mut reader, "220").await;
        for (command, code) in [
            ("EHLO test\r\n", "250"),
            ("RCPT TO:<x@y.fr>\r\n", "503"),
            ("MAIL FROM:<a@b.fr>\r\n", "250"),
            ("RSET\r\n", "250"),
            ("DATA\r\n", "503"),
            ("mail from:<a@b.fr> SIZE=100\r\n", "250"),
            ("RCPT TO:<Maire@Meaux.fr>\r\n", "250"),
            ("RCPT TO:<dgs@meaux.fr>\r\n", "250"),
            ("DATA\r\n", "354"),
        ] {
            write.write_all(command.as_bytes()).await?;
            expect(&mut reader, code).await;
        }
        let message = "Subject: =?utf-8?b?w4l0YXQ=?= de la\r\n =?utf-8?q?demande_=C3=A9?=\r\n\
                       Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                       ..un point=\r\n en t=C3=AAte\r\n.\r\n";
        write.write_all(message.as_bytes()).await?;
        expect(&mut reader, "250").await;
        write.write_all(b"NOPE\r\nQUIT\r\n").await?;
        expect(&mut reader, "502").await;
        expect(&mut reader, "221").await;
        let mails = sink.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].from, "a@b.fr");
        assert_eq!(mails[0].to, vec!["Maire@Meaux.fr".to_owned(), "dgs@meaux.fr".to_owned()]);
        assert_eq!(sink.mails_to("maire@meaux.fr").len(), 1);
        assert_eq!(mails[0].subject(), "État de la demande é");
        assert_eq!(mails[0].body(), ".un point en tête\n");
        Ok(())
    }

    #[test]
    fn quoted_printable_and_encoded_words_decode() {
        assert_eq!(decode_quoted_printable("a=3Db=\r\nc"), b"a=bc");
        assert_eq!(decode_quoted_printable("=XY"), b"=XY");
        assert_eq!(decode_words("plain"), "plain");
        assert_eq!(decode_words("=?utf-8?b?w6k=?= =?utf-8?b?w6k=?="), "éé");
        assert_eq!(decode_words("a =?utf-8?q?b?= c"), "a b c");
        assert_eq!(decode_words("=?broken"), "=?broken");
    }
}
