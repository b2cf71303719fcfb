//! The KEK in a PKCS#11 token, against SoftHSM2: a throwaway token directory per run (its own
//! SOFTHSM2_CONF), the KEK created by `init_key`, sealing and opening done by the token.
//! SoftHSM2 missing is a failure with the way to install it, never a silent skip.
//!
//! Run with `cargo test -p hes-model --features pkcs11` (the `hes` crate enables the feature,
//! so a workspace test run has it).
#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use hes_model::secrets::pkcs11::{init_key, HsmKek, Pkcs11Uri};
use hes_model::secrets::{Kek, Sealed, SecretError};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "4711-test-pin";

struct Hsm {
    dir: PathBuf,
}

impl Hsm {
    fn uri(&self, token: &str, label: &str) -> String {
        format!(
            "pkcs11:token={token};object={label}?module-path={MODULE}&pin-source={}",
            self.dir.join("pin").display()
        )
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One token directory for the process: SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize,
/// so every token the tests use is made before the first one opens.
fn hsm() -> &'static Hsm {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    HSM.get_or_init(|| {
        let have = Command::new("softhsm2-util").arg("--version").output();
        assert!(
            have.is_ok_and(|o| o.status.success()) && Path::new(MODULE).is_file(),
            "SoftHSM2 is not installed: `apt-get install -y softhsm2 opensc` \
             (scripts/lib/ensure-toolchain does it)"
        );
        // The directory outlives the process (a static is never dropped): earlier runs' are
        // removed here, those of test processes still running kept.
        let parent = std::env::temp_dir().join("hes-softhsm-tests");
        for e in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let dir = parent.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                dir.join("tokens").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
        std::fs::write(dir.join("wrong-pin"), "0000\n").unwrap();
        // Before any thread of this process loads the module.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for token in ["hes", "other", "leaky", "pinned", "relogin"] {
            run(Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(["--init-token", "--free", "--label", token])
                .args(["--so-pin", "so-4711", "--pin", PIN]));
        }
        // A key the token would let out: the KEK must refuse it.
        run(Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", &conf)
            .args(["--module", MODULE, "--token-label", "leaky", "--login"])
            .args(["--pin", PIN, "--keygen", "--key-type", "AES:32"])
            .args(["--label", "hes-kek", "--extractable"]));
        let hsm = Hsm { dir };
        for token in ["hes", "other", "relogin"] {
            let uri = Pkcs11Uri::parse(&hsm.uri(token, "hes-kek")).unwrap();
            assert!(init_key(&uri).unwrap(), "created on {token}");
        }
        hsm
    })
}

#[test]
fn seal_and_open_in_the_token() {
    let h = hsm();
    let kek = Kek::from_spec(&h.uri("hes", "hes-kek")).unwrap();
    assert!(kek.in_hsm());
    let s = kek.try_seal(b"0123456789abcdef", "MTR1/ek/v0").unwrap();
    // The software backend's format: hex of a 12-byte nonce, the ciphertext and a 16-byte tag.
    assert_eq!(s.as_str().len(), 2 * (12 + 16 + 16));
    assert_eq!(
        kek.open(&s, "MTR1/ek/v0").unwrap().expose(),
        b"0123456789abcdef"
    );
    assert_ne!(
        kek.try_seal(b"k", "c").unwrap(),
        kek.try_seal(b"k", "c").unwrap()
    );
    // Bound to its context, its KEK and its bytes.
    assert_eq!(kek.open(&s, "MTR2/ek/v0"), Err(SecretError::Unseal));
    let other = Kek::from_spec(&h.uri("other", "hes-kek")).unwrap();
    assert_eq!(other.open(&s, "MTR1/ek/v0"), Err(SecretError::Unseal));
    let mut t = s.as_str().to_owned();
    let flip = if &t[40..42] == "00" { "01" } else { "00" };
    t.replace_range(40..42, flip);
    assert_eq!(
        kek.open(&Sealed::from_stored(t), "MTR1/ek/v0"),
        Err(SecretError::Unseal)
    );
    assert_eq!(
        kek.open(&Sealed::from_stored("abcd".into()), "x"),
        Err(SecretError::Malformed)
    );
    // Nothing of the PIN or the key in Debug.
    let shown = format!("{kek:?}");
    assert!(shown.contains("hes-kek") && !shown.contains(PIN), "{shown}");
}

#[test]
fn a_lost_login_is_taken_again() {
    let h = hsm();
    let uri = h.uri("relogin", "hes-kek");
    let kek = Kek::from_spec(&uri).unwrap();
    let s = kek.try_seal(b"x", "c").unwrap();
    // Another handle on the token ends the process's login (as a token restart or a login
    // timeout would): every session of the KEK has lost it.
    HsmKek::connect(&Pkcs11Uri::parse(&uri).unwrap())
        .unwrap()
        .logout()
        .unwrap();
    for _ in 0..8 {
        assert_eq!(kek.open(&s, "c").unwrap().expose(), b"x");
        kek.try_seal(b"y", "d").unwrap();
    }
}

#[test]
fn init_is_idempotent() {
    let h = hsm();
    let uri = Pkcs11Uri::parse(&h.uri("hes", "hes-kek")).unwrap();
    assert!(!init_key(&uri).unwrap());
    let a = Kek::from_spec(&h.uri("hes", "hes-kek")).unwrap();
    let s = a.try_seal(b"x", "c").unwrap();
    assert!(!init_key(&uri).unwrap());
    let b = Kek::from_spec(&h.uri("hes", "hes-kek")).unwrap();
    assert_eq!(b.open(&s, "c").unwrap().expose(), b"x");
}

#[test]
fn concurrent_sealers_share_the_sessions() {
    let h = hsm();
    let kek = std::sync::Arc::new(Kek::from_spec(&h.uri("hes", "hes-kek")).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let kek = kek.clone();
            std::thread::spawn(move || {
                for j in 0..50 {
                    let ctx = format!("T{i}/{j}");
                    let s = kek.try_seal(ctx.as_bytes(), &ctx).unwrap();
                    assert_eq!(kek.open(&s, &ctx).unwrap().expose(), ctx.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn hsm_error(r: Result<Kek, SecretError>) -> String {
    match r {
        Err(SecretError::Hsm(m)) => m,
        other => panic!("expected an HSM error, got {other:?}"),
    }
}

#[test]
fn refusals_are_clear_and_never_fall_back() {
    let h = hsm();
    let m = hsm_error(Kek::from_spec(&h.uri("leaky", "hes-kek")));
    assert!(m.contains("extractable"), "{m}");
    let m = hsm_error(Kek::from_spec(
        &h.uri("hes", "hes-kek")
            .replace(MODULE, "/nonexistent/libsofthsm2.so"),
    ));
    assert!(
        m.contains("/nonexistent/libsofthsm2.so") && m.contains("not found"),
        "{m}"
    );
    let m = hsm_error(Kek::from_spec(&h.uri("absent", "hes-kek")));
    assert!(m.contains("no initialised token labelled `absent`"), "{m}");
    let m = hsm_error(Kek::from_spec(&h.uri("hes", "no-such-key")));
    assert!(m.contains("no such key"), "{m}");
    // On a token no test logs in to: a login is the process's, shared by its sessions.
    let m = hsm_error(Kek::from_spec(&h.uri("pinned", "hes-kek").replace(
        h.dir.join("pin").to_str().unwrap(),
        h.dir.join("wrong-pin").to_str().unwrap(),
    )));
    assert!(m.contains("wrong PIN"), "{m}");
    let m = hsm_error(Kek::from_spec(&format!(
        "pkcs11:token=hes;object=hes-kek?module-path={MODULE}&pin-value={PIN}"
    )));
    assert!(
        m.contains("PIN in the URI is refused") && !m.contains(PIN),
        "{m}"
    );
}

/// Seal+open pairs per second, software KEK against SoftHSM2, on one thread and on four
/// sharing the KEK (printed; `--nocapture`, and `--release` for figures worth quoting).
#[test]
fn throughput_software_and_softhsm() {
    let h = hsm();
    let soft = std::sync::Arc::new(Kek::from_bytes(&[7; 32]).unwrap());
    let hard = std::sync::Arc::new(Kek::from_spec(&h.uri("hes", "hes-kek")).unwrap());
    let pairs = |kek: &Kek, n: u32, t: u32| {
        for i in 0..n {
            let ctx = format!("MTR{t}-{i}/ek/v0");
            let s = kek.try_seal(&[i as u8; 16], &ctx).unwrap();
            assert_eq!(kek.open(&s, &ctx).unwrap().expose(), &[i as u8; 16]);
        }
    };
    for (name, kek) in [("software", &soft), ("softhsm2", &hard)] {
        for threads in [1u32, 4] {
            let n = 2000;
            let t = Instant::now();
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let kek = kek.clone();
                    std::thread::spawn(move || pairs(&kek, n, t))
                })
                .collect();
            for j in handles {
                j.join().unwrap();
            }
            let per_s = f64::from(n * threads) / t.elapsed().as_secs_f64();
            println!("{name}: {per_s:.0} seal+open per second ({threads} threads, {n} pairs each)");
        }
    }
}
