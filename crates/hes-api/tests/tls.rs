//! TLS with rustls: a self-signed certificate (made with the `openssl` command), a real
//! listener on 127.0.0.1:0, a rustls client, HSTS on the answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A self-signed certificate for localhost and its key, in `dir`.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .output();
    match made {
        Ok(o) if o.status.success() => {}
        other => panic!("the openssl command is needed to make a test certificate: {other:?}"),
    }
    (cert, key)
}

#[tokio::test]
async fn serves_over_tls_with_hsts() {
    let fx = common::fixture_with(hes_api::ApiConfig {
        hash_cost: common::COST,
        hsts: true,
        ..hes_api::ApiConfig::default()
    })
    .await;
    let (cert, key) = certificate(&fx.dir);
    let acceptor = hes_api::serve::tls_acceptor(&cert, &key).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = hes_api::serve::TlsListener::new(tcp, acceptor).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let server = tokio::spawn(hes_api::serve::serve_tls(
        listener,
        fx.app.clone(),
        std::future::pending(),
    ));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(&cert).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio::time::timeout(
        Duration::from_secs(10),
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .unwrap()
    .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(
        text.contains("strict-transport-security: max-age="),
        "{text}"
    );
    // A plain-text client gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    server.abort();
}

/// Whether the server closed `c` (end of stream or reset) within `within`.
async fn closed_within(c: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(within, c.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test]
async fn handshakes_are_bounded_in_time_and_per_client() {
    let fx = common::fixture().await;
    let (cert, key) = certificate(&fx.dir);
    let acceptor = hes_api::serve::tls_acceptor(&cert, &key).unwrap();

    // A client that connects and never speaks is dropped after the handshake timeout.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limits = hes_api::serve::TlsLimits {
        handshake_timeout: Duration::from_secs(1),
        ..hes_api::serve::TlsLimits::default()
    };
    let listener = hes_api::serve::TlsListener::with_limits(tcp, acceptor.clone(), limits).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let server = tokio::spawn(hes_api::serve::serve_tls(
        listener,
        fx.app.clone(),
        std::future::pending(),
    ));
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(20)).await);
    server.abort();

    // One address holds at most `per_client` handshakes: the next connection is closed at
    // once, while those pending stay open.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let limits = hes_api::serve::TlsLimits {
        handshake_timeout: Duration::from_secs(600),
        handshakes: 256,
        per_client: 3,
    };
    let listener = hes_api::serve::TlsListener::with_limits(tcp, acceptor, limits).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let server = tokio::spawn(hes_api::serve::serve_tls(
        listener,
        fx.app.clone(),
        std::future::pending(),
    ));
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(30)).await,
        "a fourth handshake from one address was not refused"
    );
    assert!(!closed_within(&mut pending[0], Duration::from_millis(300)).await);
    // Their slots come back when they go.
    drop(pending);
    let mut ok = false;
    for _ in 0..100 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        if !closed_within(&mut c, Duration::from_millis(200)).await {
            ok = true;
            break;
        }
    }
    assert!(ok, "the address stayed refused after its handshakes ended");
    server.abort();
}
