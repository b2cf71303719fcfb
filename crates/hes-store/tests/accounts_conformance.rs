//! One suite, both adapters of the accounts port: SQLite (a fresh file per test) and
//! PostgreSQL (a fresh database per test on `HES_DATABASE_URL`, dropped at the end).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use dlms::ObisCode;
use hes_model::{Event, MeterId, Reading, Source};
use hes_store::accounts::{
    Accounts, AccountsError, ApiToken, AuditEntry, AuditFilter, EventFilter, EventKey, PgAccounts,
    RefreshUse, Role, Severity, SigningKey, SqliteAccounts, StoredSchedule, User, UserUpdate,
};
use hes_store::{PgStore, SqliteStore, Store};
use serde_json::json;

fn user(name: &str, role: Role) -> User {
    User {
        username: name.into(),
        password_hash: "$argon2id$fake".into(),
        role,
        groups: vec!["cell=cell-1".into()],
        created_at: 100,
    }
}

async fn users(a: &dyn Accounts, _s: &dyn Store) {
    assert!(a.users().await.unwrap().is_empty());
    a.create_user(&user("ann", Role::Operator)).await.unwrap();
    a.create_user(&user("bob", Role::Viewer)).await.unwrap();
    assert!(matches!(
        a.create_user(&user("ann", Role::Admin)).await,
        Err(AccountsError::Conflict(_))
    ));
    assert_eq!(
        a.user("ann").await.unwrap().unwrap(),
        user("ann", Role::Operator)
    );
    assert_eq!(a.user("nobody").await.unwrap(), None);
    a.update_user(
        "ann",
        &UserUpdate {
            role: Some(Role::Admin),
            groups: Some(vec![]),
            password_hash: None,
        },
    )
    .await
    .unwrap();
    let ann = a.user("ann").await.unwrap().unwrap();
    assert_eq!((ann.role, ann.groups.len()), (Role::Admin, 0));
    assert_eq!(ann.password_hash, "$argon2id$fake");
    assert!(matches!(
        a.update_user("zed", &UserUpdate::default()).await,
        Err(AccountsError::NotFound(_))
    ));
    let names: Vec<String> = a
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["ann", "bob"]);
    a.delete_user("bob").await.unwrap();
    assert!(matches!(
        a.delete_user("bob").await,
        Err(AccountsError::NotFound(_))
    ));
}

async fn tokens(a: &dyn Accounts, _s: &dyn Store) {
    let t = ApiToken {
        id: "t1".into(),
        name: "billing".into(),
        owner: "admin".into(),
        role: Role::Integrator,
        scopes: vec!["read".into()],
        groups: vec![],
        created_at: 10,
        expires_at: Some(1000),
        revoked_at: None,
    };
    a.create_token(&t, "hash1").await.unwrap();
    assert!(matches!(
        a.create_token(&t, "hash2").await,
        Err(AccountsError::Conflict(_))
    ));
    assert_eq!(a.token_by_hash("hash1").await.unwrap().unwrap(), t);
    assert_eq!(a.token_by_hash("other").await.unwrap(), None);
    a.revoke_token("t1", 50).await.unwrap();
    a.revoke_token("t1", 60).await.unwrap();
    assert_eq!(
        a.token_by_hash("hash1").await.unwrap().unwrap().revoked_at,
        Some(50)
    );
    assert!(matches!(
        a.revoke_token("t9", 1).await,
        Err(AccountsError::NotFound(_))
    ));
    assert_eq!(a.tokens().await.unwrap().len(), 1);
}

async fn refresh(a: &dyn Accounts, _s: &dyn Store) {
    a.put_refresh("r1", "ann", 1000).await.unwrap();
    a.put_refresh("r2", "ann", 1000).await.unwrap();
    a.put_refresh("old", "bob", 100).await.unwrap();
    assert_eq!(
        a.use_refresh("r1", 500).await.unwrap(),
        RefreshUse::Valid {
            username: "ann".into()
        }
    );
    assert_eq!(
        a.use_refresh("old", 500).await.unwrap(),
        RefreshUse::Invalid
    );
    assert_eq!(
        a.use_refresh("nope", 500).await.unwrap(),
        RefreshUse::Invalid
    );
    // Presenting r1 again revokes every token of ann, r2 included.
    assert_eq!(
        a.use_refresh("r1", 501).await.unwrap(),
        RefreshUse::Reused {
            username: "ann".into()
        }
    );
    assert!(matches!(
        a.use_refresh("r2", 502).await.unwrap(),
        RefreshUse::Reused { .. }
    ));
}

async fn audit(a: &dyn Accounts, _s: &dyn Store) {
    for (i, (actor, action)) in [
        ("ann", "user.create"),
        ("bob", "command.relay"),
        ("ann", "command.relay"),
    ]
    .into_iter()
    .enumerate()
    {
        a.audit(&AuditEntry {
            time: 100 + i as i64,
            actor: actor.into(),
            action: action.into(),
            target: "MTR1".into(),
            detail: json!({"i": i}),
        })
        .await
        .unwrap();
    }
    let all = AuditFilter {
        limit: 10,
        ..AuditFilter::default()
    };
    let (rows, total) = a.audit_list(&all).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(rows[0].detail, json!({"i": 2}));
    let f = AuditFilter {
        actor: Some("ann".into()),
        limit: 1,
        offset: 1,
        ..AuditFilter::default()
    };
    let (rows, total) = a.audit_list(&f).await.unwrap();
    assert_eq!(
        (rows.len(), total, rows[0].action.as_str()),
        (1, 2, "user.create")
    );
    let f = AuditFilter {
        action: Some("command.relay".into()),
        from: Some(102),
        limit: 10,
        ..AuditFilter::default()
    };
    assert_eq!(a.audit_list(&f).await.unwrap().1, 1);
}

async fn events_and_acks(a: &dyn Accounts, s: &dyn Store) {
    let ev = |m: &str, log: ObisCode, time: i64, code: u16| Event {
        meter: MeterId::from(m),
        log,
        time,
        code,
        source: Source::Push,
        received_at: time,
    };
    let std_log = ObisCode::new(0, 0, 99, 98, 0, 255);
    let fraud = ObisCode::new(0, 0, 99, 98, 1, 255);
    let pq = ObisCode::new(0, 0, 99, 98, 4, 255);
    s.insert_events(&[
        // Severity by code (hes_model::event_class): a power up is information, a cover
        // removed an alarm, an under voltage a warning.
        ev("A", std_log, 10, 2),
        ev("A", fraud, 20, 40),
        ev("B", pq, 30, 76),
        ev("B", fraud, 40, 44),
    ])
    .await
    .unwrap();
    let f = |meters: Option<Vec<&str>>, sev, ack| EventFilter {
        meters: meters.map(|m| m.into_iter().map(String::from).collect()),
        severity: sev,
        acknowledged: ack,
        limit: 100,
        ..EventFilter::default()
    };
    let (rows, total) = a.events(&f(None, None, None)).await.unwrap();
    assert_eq!(total, 4);
    assert_eq!(
        rows.iter().map(|r| r.time).collect::<Vec<_>>(),
        [40, 30, 20, 10]
    );
    assert_eq!(
        a.events(&f(None, Some(Severity::Alarm), None))
            .await
            .unwrap()
            .1,
        2
    );
    assert_eq!(
        a.events(&f(None, Some(Severity::Warning), None))
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(
        a.events(&f(None, Some(Severity::Info), None))
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(
        a.events(&f(Some(vec!["A"]), None, None)).await.unwrap().1,
        2
    );
    assert_eq!(a.events(&f(Some(vec![]), None, None)).await.unwrap().1, 0);
    let ranged = EventFilter {
        from: Some(20),
        to: Some(30),
        limit: 1,
        offset: 1,
        ..EventFilter::default()
    };
    let (rows, total) = a.events(&ranged).await.unwrap();
    assert_eq!((total, rows[0].time), (2, 20));
    let key = EventKey {
        meter: "A".into(),
        log: fraud.to_string(),
        time: 20,
        code: 40,
    };
    a.ack_event(&key, "ann", 99).await.unwrap();
    a.ack_event(&key, "bob", 100).await.unwrap();
    let e = a.event(&key).await.unwrap().unwrap();
    assert_eq!((e.acked_by.as_deref(), e.acked_at), (Some("ann"), Some(99)));
    assert_eq!(
        a.events(&f(None, Some(Severity::Alarm), Some(false)))
            .await
            .unwrap()
            .1,
        1
    );
    assert_eq!(a.events(&f(None, None, Some(true))).await.unwrap().1, 1);
    let missing = EventKey { code: 41, ..key };
    assert!(matches!(
        a.ack_event(&missing, "ann", 1).await,
        Err(AccountsError::NotFound(_))
    ));
    assert_eq!(a.event(&missing).await.unwrap(), None);
}

async fn channels_and_days(a: &dyn Accounts, s: &dyn Store) {
    let r = |obis: ObisCode, time: i64| Reading {
        meter: MeterId::from("M1"),
        obis,
        class_id: 3,
        attribute: 2,
        time,
        value: 1,
        scaler: 0,
        unit: 30,
        status: 0,
        source: Source::Scheduled,
        received_at: time,
    };
    let imp = ObisCode::new(1, 0, 1, 8, 0, 255);
    let exp = ObisCode::new(1, 0, 2, 8, 0, 255);
    let day = 1_793_491_200;
    s.insert_readings(&[
        r(imp, day),
        r(imp, day + 900),
        r(exp, day),
        r(imp, day + 86_400),
    ])
    .await
    .unwrap();
    assert_eq!(
        a.reading_channels("M1").await.unwrap(),
        ["1.0.1.8.0.255", "1.0.2.8.0.255"]
    );
    assert!(a.reading_channels("M2").await.unwrap().is_empty());
    assert_eq!(
        a.readings_per_day("1.0.1.8.0.255", day, day + 2 * 86_400)
            .await
            .unwrap(),
        [(day, 2), (day + 86_400, 1)]
    );
    assert_eq!(a.readings_total().await.unwrap(), 4);
    let m1 = ["M1".to_string()];
    let m2 = ["M2".to_string()];
    assert_eq!(
        a.readings_per_day_of("1.0.1.8.0.255", day, day + 2 * 86_400, &m1)
            .await
            .unwrap(),
        [(day, 2), (day + 86_400, 1)]
    );
    assert!(a
        .readings_per_day_of("1.0.1.8.0.255", day, day + 2 * 86_400, &m2)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(a.readings_total_of(&m1).await.unwrap(), 4);
    assert_eq!(a.readings_total_of(&m2).await.unwrap(), 0);
    assert_eq!(a.readings_total_of(&[]).await.unwrap(), 0);
}

/// A change of a user ends its sessions: token generation, refresh tokens, owned API tokens.
async fn sessions(a: &dyn Accounts, _s: &dyn Store) {
    a.create_user(&user("ann", Role::Operator)).await.unwrap();
    a.create_user(&user("bob", Role::Operator)).await.unwrap();
    assert_eq!(a.token_generation("ann").await.unwrap(), Some(0));
    assert_eq!(a.token_generation("nobody").await.unwrap(), None);
    let token = |id: &str, owner: &str| ApiToken {
        id: id.into(),
        name: id.into(),
        owner: owner.into(),
        role: Role::Viewer,
        scopes: vec![],
        groups: vec![],
        created_at: 10,
        expires_at: None,
        revoked_at: None,
    };
    a.create_token(&token("ta", "ann"), "hta").await.unwrap();
    a.create_token(&token("tb", "bob"), "htb").await.unwrap();
    a.put_refresh("ra", "ann", i64::MAX / 2).await.unwrap();
    a.put_refresh("rb", "bob", i64::MAX / 2).await.unwrap();
    // Nothing changed: nothing ends.
    a.update_user("ann", &UserUpdate::default()).await.unwrap();
    assert_eq!(a.token_generation("ann").await.unwrap(), Some(0));
    a.update_user(
        "ann",
        &UserUpdate {
            password_hash: Some("$argon2id$new".into()),
            ..UserUpdate::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(a.token_generation("ann").await.unwrap(), Some(1));
    assert_eq!(a.use_refresh("ra", 1).await.unwrap(), RefreshUse::Invalid);
    assert!(a
        .token_by_hash("hta")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    // Bob's untouched.
    assert!(a
        .token_by_hash("htb")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
    a.put_refresh("rb2", "bob", i64::MAX / 2).await.unwrap();
    assert_eq!(a.refresh_owner("rb2").await.unwrap(), Some("bob".into()));
    assert_eq!(a.refresh_owner("nope").await.unwrap(), None);
    // Logout: an unspent token names its user once; a spent or unknown one nobody.
    assert_eq!(a.revoke_refresh("rb2").await.unwrap(), Some("bob".into()));
    assert_eq!(a.revoke_refresh("rb2").await.unwrap(), None);
    assert_eq!(a.use_refresh("rb2", 1).await.unwrap(), RefreshUse::Invalid);
    a.delete_user("bob").await.unwrap();
    assert!(a
        .token_by_hash("htb")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert_eq!(a.use_refresh("rb", 1).await.unwrap(), RefreshUse::Invalid);
    assert_eq!(a.token_generation("bob").await.unwrap(), None);
}

async fn signing_keys(a: &dyn Accounts, _s: &dyn Store) {
    assert!(a.signing_keys().await.unwrap().is_empty());
    let key = |seq: i64, b: u8| SigningKey {
        seq,
        kid: format!("k{seq}-{b}"),
        secret: vec![b; 32],
        created_at: 100 + seq,
    };
    // Two nodes creating the first key at once: one wins, both then read it.
    let (k1, k2) = (key(1, 1), key(1, 2));
    let (x, y) = tokio::join!(a.add_signing_key(&k1), a.add_signing_key(&k2));
    assert!(x.unwrap() ^ y.unwrap());
    let keys = a.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0] == key(1, 1) || keys[0] == key(1, 2));
    assert!(a.add_signing_key(&key(2, 3)).await.unwrap());
    assert!(a.add_signing_key(&key(3, 4)).await.unwrap());
    // Re-sealed under another KEK: the bytes of the keys named replaced, all at once.
    let mut resealed = key(2, 3);
    resealed.secret = b"kek:other".to_vec();
    let mut unknown = key(9, 9);
    unknown.secret = vec![0; 4];
    assert_eq!(
        a.replace_signing_key_secrets(&[resealed.clone(), unknown])
            .await
            .unwrap(),
        1
    );
    assert_eq!(a.signing_keys().await.unwrap()[1], resealed);
    a.drop_signing_keys_before(3).await.unwrap();
    assert_eq!(a.signing_keys().await.unwrap(), [key(3, 4)]);
    assert!(!format!("{:?}", key(3, 4)).contains("secret"));
}

async fn schedules(a: &dyn Accounts, _s: &dyn Store) {
    let s = |n: &str, spec: &str| StoredSchedule {
        name: n.into(),
        spec: spec.into(),
    };
    a.put_schedule(&s("b", "{}")).await.unwrap();
    a.put_schedule(&s("a", "{}")).await.unwrap();
    a.put_schedule(&s("b", "{\"x\":1}")).await.unwrap();
    assert_eq!(
        a.schedules().await.unwrap(),
        [s("a", "{}"), s("b", "{\"x\":1}")]
    );
    a.delete_schedule("a").await.unwrap();
    assert!(matches!(
        a.delete_schedule("a").await,
        Err(AccountsError::NotFound(_))
    ));
    a.ping().await.unwrap();
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = std::env::temp_dir().join(super::common::unique("hes_acc"));
                    std::fs::create_dir_all(&dir).unwrap();
                    let db = dir.join("hes.db");
                    let store = super::SqliteStore::open(&db).await.unwrap();
                    let acc = super::SqliteAccounts::open(&db).await.unwrap();
                    tokio::time::timeout(std::time::Duration::from_secs(60), super::$case(&acc, &store))
                        .await
                        .unwrap();
                    drop((acc, store));
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            )*
        }
        mod pg {
            $(
                #[tokio::test]
                async fn $case() {
                    let db = super::common::pg_database().await;
                    let store = super::PgStore::connect(&db.url).await.unwrap();
                    let acc = super::PgAccounts::connect(&db.url).await.unwrap();
                    tokio::time::timeout(std::time::Duration::from_secs(60), super::$case(&acc, &store))
                        .await
                        .unwrap();
                    drop((acc, store));
                    db.drop_database().await;
                }
            )*
        }
    };
}

conformance!(
    users,
    tokens,
    refresh,
    audit,
    events_and_acks,
    channels_and_days,
    schedules,
    sessions,
    signing_keys
);
