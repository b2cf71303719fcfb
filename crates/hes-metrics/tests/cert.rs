//! The expiry of a real certificate (made with the `openssl` command, RSA so that its DER has
//! long-form lengths): what `watch_pem` reads is its notAfter, and it is in the exposition.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{SystemTime, UNIX_EPOCH};

#[test]
fn the_expiry_of_a_certificate_made_by_openssl() {
    let dir = std::env::temp_dir().join(format!("hes-metrics-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "30", "-subj", "/CN=localhost"])
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        other => panic!("the openssl command is needed to make a test certificate: {other:?}"),
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let not_after = hes_metrics::cert::watch_pem("api_tls", &cert).unwrap();
    let want = now + 30 * 86_400;
    assert!(
        (not_after - want).abs() <= 120,
        "notAfter {not_after}, expected about {want}"
    );
    let text = hes_metrics::render();
    let line = format!("hes_certificate_expiry_timestamp_seconds{{kind=\"api_tls\"}} {not_after}");
    assert!(text.contains(&line), "{line} not in:\n{text}");
    assert!(hes_metrics::cert::watch_pem("api_tls", &key).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
