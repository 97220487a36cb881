//! Shared by billing's test crates: the Factur-X check by the PyPI package `factur-x`.

use std::process::Command;

use anyhow::{Context, ensure};

const CHECK: &str = r#"
import sys, facturx
with open(sys.argv[1], 'rb') as f:
    xml = f.read()
facturx.xml_check_xsd(xml, flavor='factur-x', level='en16931')
print('valid')
"#;

/// Runs facturx.xml_check_xsd on `xml`; fails with its output when the XML is invalid.
pub fn check_facturx(name: &str, xml: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("id77-facturx-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, xml)?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(&path)
        .output()
        .context("python3 with the factur-x package is needed (make test installs it)")?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("valid"),
        "{name} fails the Factur-X EN 16931 XSD:\n{}\n{}\n{xml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
