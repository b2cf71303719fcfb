//! The meter registry from the command line: `hes meters import FILE` puts an inventory (JSON,
//! or CSV for `.csv`) into the store once, sealed under the KEK, all or nothing; `hes meters
//! export` writes it back (secrets only with `--with-secrets`); `hes meters list` counts and
//! shows. Also the helpers the other commands use to reach the registry: the strict KEK, the
//! registry over a database, and a throwaway registry for one-off tools that take a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use hes_model::inventory::InventoryEntry;
use hes_model::secrets::Kek;
use hes_store::{Registry, StateStore};
use rand::RngCore;

#[derive(Debug, Args)]
pub struct MetersArgs {
    /// `postgres://…` or an SQLite file path.
    #[arg(long, env = "HES_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: MetersCommand,
}

#[derive(Debug, Subcommand)]
pub enum MetersCommand {
    /// Import an inventory file into the registry: every entry checked first, then all or none.
    Import {
        file: PathBuf,
        /// Replace meters that exist already (else an existing id refuses the whole import).
        #[arg(long)]
        replace: bool,
    },
    /// Write the registry as an inventory (JSON, or CSV with `--csv`) to stdout or `--out`.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        csv: bool,
        /// Include keys and passwords in clear (handle the file as a secret).
        #[arg(long)]
        with_secrets: bool,
    },
    /// How many meters, by status, and the first few.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// The KEK from `HES_KEK` (64 hex digits or a `pkcs11:` URI) or `HES_KEK_FILE`; a malformed one is an error,
/// never a random key.
pub fn kek_from_env() -> anyhow::Result<Kek> {
    let in_token = std::env::var("HES_KEK").is_ok_and(|v| v.trim_start().starts_with("pkcs11:"));
    Kek::from_env().context(if in_token {
        "the key-encryption key in a PKCS#11 token (HES_KEK=pkcs11:…)"
    } else {
        "the key-encryption key: set HES_KEK (64 hex digits, or a pkcs11: URI) or HES_KEK_FILE; \
         `openssl rand -hex 32` makes one"
    })
}

/// The KEK of the environment when set (a malformed one is an error), else a random one that
/// lives as long as the process; `None` in the second element when generated.
pub fn kek_or_random() -> anyhow::Result<(Kek, bool)> {
    if std::env::var_os("HES_KEK").is_some() || std::env::var_os("HES_KEK_FILE").is_some() {
        return Ok((kek_from_env()?, false));
    }
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    Ok((Kek::from_bytes(&k)?, true))
}

/// The state store at `url` (PostgreSQL or an SQLite file), migrated.
pub async fn open_state(url: &str) -> anyhow::Result<Arc<dyn StateStore>> {
    Ok(open_stores(url).await?.1)
}

/// The data store and the state store at `url`: one PostgreSQL pool or one SQLite file for
/// both, migrated.
pub async fn open_stores(
    url: &str,
) -> anyhow::Result<(Arc<dyn hes_store::Store>, Arc<dyn StateStore>)> {
    let (store, state, _) = open_all(url).await?;
    Ok((store, state))
}

/// [`open_stores`] and the CIM outbound queue, on the same pool or file.
pub async fn open_all(
    url: &str,
) -> anyhow::Result<(
    Arc<dyn hes_store::Store>,
    Arc<dyn StateStore>,
    Arc<dyn hes_store::CimOutbox>,
)> {
    Ok(if hes_store::is_postgres_url(url) {
        let pg = Arc::new(
            hes_store::PgStore::connect(url)
                .await
                .context("opening PostgreSQL")?,
        );
        (pg.clone(), pg.clone(), pg)
    } else {
        let lite = Arc::new(
            hes_store::SqliteStore::open(url)
                .await
                .with_context(|| format!("opening {url}"))?,
        );
        (lite.clone(), lite.clone(), lite)
    })
}

/// Reads an inventory file.
pub fn read_inventory(path: &Path) -> anyhow::Result<Vec<InventoryEntry>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "csv") {
        Ok(hes_model::inventory::from_csv(&text)?)
    } else {
        serde_json::from_str(&text).with_context(|| format!("inventory JSON {}", path.display()))
    }
}

/// An inventory file's meters in a registry of their own, for one-off tools (`hes collect`,
/// `hes push-listen`): in memory, or in the SQLite file `state` (which then keeps the
/// invocation counters across runs). The file's entries replace what the store had.
pub async fn registry_from(
    path: &Path,
    state: Option<&Path>,
) -> anyhow::Result<(Arc<Registry>, Vec<InventoryEntry>)> {
    let entries = read_inventory(path)?;
    let (kek, _) = kek_or_random()?;
    let registry = match state {
        Some(p) => Registry::open(open_state(&p.to_string_lossy()).await?, kek).await?,
        None => Registry::in_memory(kek).await?,
    };
    registry.import(&entries, true).await?;
    Ok((registry, entries))
}

/// Adds the meters of `entries` that the registry does not have yet; returns how many.
/// (`inventory = …` in a configuration: a first import, after which the store is the source.)
pub async fn import_new(registry: &Registry, entries: &[InventoryEntry]) -> anyhow::Result<usize> {
    for _ in 0..3 {
        registry.refresh().await?;
        let new: Vec<InventoryEntry> = entries
            .iter()
            .filter(|e| registry.get(&e.id.as_str().into()).is_none())
            .cloned()
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        match registry.import(&new, false).await {
            Ok(n) => return Ok(n),
            // Another node imported some of them at the same moment: look again.
            Err(hes_store::RegistryError::Store(hes_store::StoreError::Conflict(_))) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("importing the inventory kept conflicting with another node")
}

pub async fn run(args: MetersArgs) -> u8 {
    match meters(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes meters: {e:#}");
            1
        }
    }
}

async fn meters(args: MetersArgs) -> anyhow::Result<()> {
    let url = args
        .database_url
        .context("no database: set HES_DATABASE_URL or --database-url")?;
    let registry = Registry::open(open_state(&url).await?, kek_from_env()?).await?;
    match args.command {
        MetersCommand::Import { file, replace } => {
            let entries = read_inventory(&file)?;
            let n = registry
                .import(&entries, replace)
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            println!(
                "imported {n} meters from {} ({} in the registry); the file is no longer needed",
                file.display(),
                registry.len()
            );
        }
        MetersCommand::Export {
            out,
            csv,
            with_secrets,
        } => {
            let entries = registry.export(with_secrets).await?;
            let text = if csv {
                hes_model::inventory::to_csv(&entries)
            } else {
                serde_json::to_string_pretty(&entries)?
            };
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => println!("{text}"),
            }
        }
        MetersCommand::List { limit } => {
            let all = registry.all();
            let mut by_status = std::collections::BTreeMap::new();
            for m in &all {
                *by_status.entry(m.status.as_str()).or_insert(0usize) += 1;
            }
            println!("{} meters {by_status:?}", all.len());
            for m in all.iter().take(limit) {
                println!(
                    "{} {}:{} title {} keys v{} {}",
                    m.id,
                    m.endpoint.host,
                    m.endpoint.port,
                    m.system_title,
                    m.keys.version,
                    m.groups
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
    }
    Ok(())
}
