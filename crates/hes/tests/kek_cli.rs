//! The KEK ceremony from the command line against SoftHSM2: `scripts/hsm init` makes a token
//! (in a directory of the test's own), `hes kek init` the KEK on it; meters imported under a
//! software KEK are re-sealed to the token's with `hes kek rotate`, all at once, and export
//! the same keys under it; the old KEK opens nothing after; a token that cannot be reached
//! stops `hes` with a clear error. SoftHSM2 missing fails the test (with how to install it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::process::{Command, Output};

use hes_model::inventory::InventoryEntry;
use hes_testkit::inventory::{entries, write_json};
use hes_testkit::TempDir;

const SOFT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Env {
    conf: String,
    hsm_kek: String,
}

fn hes(db: &Path, env: &Env, kek: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hes"))
        .args(args)
        .env("HES_DATABASE_URL", db)
        .env("SOFTHSM2_CONF", &env.conf)
        .env("HES_KEK", kek)
        .env("OLD_KEK", SOFT)
        .env_remove("HES_KEK_FILE")
        .output()
        .unwrap()
}

fn export(db: &Path, env: &Env, kek: &str) -> Vec<InventoryEntry> {
    let o = hes(db, env, kek, &["meters", "export", "--with-secrets"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn rotate_meters_from_a_software_kek_to_softhsm() {
    let dir = TempDir::new("hes-kek-cli").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/hsm");
    let init = || {
        Command::new(&script)
            .arg("init")
            .env("HES_HSM_DIR", dir.join("softhsm"))
            .env("HES_BIN", env!("CARGO_BIN_EXE_hes"))
            .output()
            .unwrap()
    };
    let o = init();
    assert!(
        o.status.success(),
        "scripts/hsm init (SoftHSM2 installed? apt-get install -y softhsm2 opensc): {}",
        text(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let export_line = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}='")))
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .to_owned()
    };
    let env = Env {
        conf: export_line("SOFTHSM2_CONF"),
        hsm_kek: export_line("HES_KEK"),
    };
    assert!(text(&o).contains("created the KEK"), "{}", text(&o));
    // The PINs are files only the owner reads; no PIN in what is printed.
    let pin = std::fs::read_to_string(dir.join("softhsm/user-pin")).unwrap();
    assert!(!stdout.contains(pin.trim()), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["user-pin", "so-pin"] {
            let mode = std::fs::metadata(dir.join("softhsm").join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
    // Again: the same token, the KEK kept.
    let o = init();
    assert!(
        o.status.success() && text(&o).contains("exists already"),
        "{}",
        text(&o)
    );

    let db = dir.join("hes.db");
    let file = dir.join("inventory.json");
    let list = entries(4);
    write_json(&file, &list).unwrap();
    let o = hes(
        &db,
        &env,
        SOFT,
        &["meters", "import", file.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(export(&db, &env, SOFT), list);
    // The API's signing key, sealed under the software KEK as `hes serve` keeps it.
    let accounts_db = dir.join("accounts.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // For this process's own PKCS#11 calls below, before the module is loaded.
    std::env::set_var("SOFTHSM2_CONF", &env.conf);
    let api_key = |kek: &str| {
        rt.block_on(async {
            let accounts = hes_api::accounts::open(accounts_db.to_str().unwrap())
                .await
                .unwrap();
            let kek = hes_model::secrets::Kek::from_spec(kek).unwrap();
            let registry = hes_store::Registry::in_memory(kek).await.unwrap();
            hes_api::jwt_key(accounts, None, registry).await.map(|_| ())
        })
    };
    api_key(SOFT).unwrap();
    let accounts = ["--accounts", accounts_db.to_str().unwrap()];

    // A KEK's hex on the command line is refused.
    let o = hes(
        &db,
        &env,
        SOFT,
        &["kek", "rotate", "--from", SOFT, "--to", &env.hsm_kek],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("env:NAME"), "{}", text(&o));
    // A dry run writes nothing.
    let rotate = [
        "kek",
        "rotate",
        "--from",
        "env:OLD_KEK",
        "--to",
        &env.hsm_kek,
        accounts[0],
        accounts[1],
    ];
    let o = hes(&db, &env, SOFT, &[&rotate[..], &["--dry-run"]].concat());
    assert!(
        text(&o).contains(
            "would re-seal 4 meters (0 already under the new KEK), 0 webhook secrets and 1 API"
        ),
        "{}",
        text(&o)
    );
    assert_eq!(export(&db, &env, SOFT), list);

    let o = hes(&db, &env, SOFT, &rotate);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("re-sealed 4 meters"), "{}", text(&o));
    assert!(
        text(&o).contains("re-sealed 0 webhook secrets")
            && text(&o).contains("re-sealed 1 API signing keys"),
        "{}",
        text(&o)
    );
    // The API opens its key under the token's KEK, and no longer under the old one.
    api_key(&env.hsm_kek).unwrap();
    assert!(api_key(SOFT).is_err());
    // The same keys under the token's KEK; the old KEK opens nothing.
    assert_eq!(export(&db, &env, &env.hsm_kek), list);
    let o = hes(&db, &env, SOFT, &["meters", "export", "--with-secrets"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Once more: nothing left to do.
    let o = hes(&db, &env, SOFT, &rotate);
    assert!(
        o.status.success()
            && text(&o).contains("re-sealed 0 meters under the new KEK (4 were already)")
            && text(&o).contains("re-sealed 0 API signing keys"),
        "{}",
        text(&o)
    );

    // The token out of reach: a clear error, nothing opened with a key in memory.
    let gone = env.hsm_kek.replace(
        "/usr/lib/softhsm/libsofthsm2.so",
        "/nonexistent/libsofthsm2.so",
    );
    let o = hes(&db, &env, &gone, &["meters", "export", "--with-secrets"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("PKCS#11") && t.contains("not found"), "{t}");
    assert!(!t.contains(pin.trim()), "{t}");
    // New meters are sealed by the token too.
    let more = dir.join("more.json");
    let mut extra = entries(6);
    extra.drain(..4);
    write_json(&more, &extra).unwrap();
    let o = hes(
        &db,
        &env,
        &env.hsm_kek,
        &["meters", "import", more.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(export(&db, &env, &env.hsm_kek), entries(6));

    let o = Command::new(&script)
        .arg("down")
        .env("HES_HSM_DIR", dir.join("softhsm"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}
