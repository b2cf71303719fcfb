//! Checking a message against the XSDs (crates/hes-cim/xsd) with `xmllint`, for the tests.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The schema that imports the envelope and every payload.
pub fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("xsd/all.xsd")
}

/// `Ok` when `xmllint --schema` finds `xml` valid; else what it said. Needs `xmllint`
/// (libxml2-utils; scripts/lib/ensure-toolchain installs it).
pub fn validate(xml: &str) -> Result<(), String> {
    let mut child = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("xmllint: {e} (install libxml2-utils)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(xml.as_bytes())
            .map_err(|e| format!("xmllint stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("xmllint: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}\n{}", String::from_utf8_lossy(&out.stderr), xml))
    }
}
