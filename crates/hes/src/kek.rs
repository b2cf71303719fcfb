//! The key-encryption key: `hes kek init --pkcs11 URI` creates it in a PKCS#11 token (once;
//! again is a no-op), `hes kek rotate --from OLD --to NEW` re-seals every meter secret of the
//! registry from one KEK to the other in one transaction (and, with `--accounts`, the API's
//! signing keys sealed under it, in a second one). A KEK is named by `pkcs11:…`,
//! `env:NAME` or `file:PATH` (hex or a `pkcs11:` URI inside): never by its hex on the command
//! line, where process lists and shell histories would keep it.

use anyhow::Context;
use clap::{Args, Subcommand};
use hes_model::meter::MeterRecord;
use hes_model::secrets::pkcs11::{init_key, Pkcs11Uri};
use hes_model::secrets::{Kek, SecretError};

use crate::meters::open_state;

#[derive(Debug, Args)]
pub struct KekArgs {
    #[command(subcommand)]
    pub command: KekCommand,
}

#[derive(Debug, Subcommand)]
pub enum KekCommand {
    /// Create the KEK (AES-256, sensitive, not extractable) on a PKCS#11 token unless it is
    /// there.
    Init {
        /// `pkcs11:token=…;object=…?module-path=…&pin-source=PIN-FILE`
        #[arg(long)]
        pkcs11: String,
    },
    /// Re-seal every meter's secrets from one KEK to another, all or none. Run it with the
    /// head-end's nodes stopped, then start them with the new KEK.
    Rotate {
        /// The KEK the registry is sealed under: `pkcs11:…`, `env:NAME` or `file:PATH`.
        #[arg(long)]
        from: String,
        /// The KEK to seal under from now on (same forms).
        #[arg(long)]
        to: String,
        /// `postgres://…` or an SQLite file path.
        #[arg(long, env = "HES_DATABASE_URL")]
        database_url: Option<String>,
        /// The API's accounts database (`postgres://…` or an SQLite file), whose signing keys
        /// sealed under the KEK are re-sealed too.
        #[arg(long)]
        accounts: Option<String>,
        /// Check that every secret opens under the old KEK and seals under the new one, write
        /// nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(args: KekArgs) -> u8 {
    match kek(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hes kek: {e:#}");
            1
        }
    }
}

/// A KEK from its name on the command line.
pub fn load(spec: &str) -> anyhow::Result<Kek> {
    let text = if spec.starts_with("pkcs11:") {
        spec.to_owned()
    } else if let Some(name) = spec.strip_prefix("env:") {
        std::env::var(name).with_context(|| format!("{name} is not set"))?
    } else if let Some(path) = spec.strip_prefix("file:") {
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
    } else {
        anyhow::bail!(
            "a KEK is named by `pkcs11:…`, `env:NAME` or `file:PATH` (never its hex on the \
             command line)"
        );
    };
    let what = if text.trim_start().starts_with("pkcs11:") {
        "the PKCS#11 KEK"
    } else {
        "the KEK (64 hex digits)"
    };
    Kek::from_spec(&text)
        .with_context(|| format!("{what} of {}", spec.split('?').next().unwrap_or(spec)))
}

async fn kek(args: KekArgs) -> anyhow::Result<()> {
    match args.command {
        KekCommand::Init { pkcs11 } => {
            let uri = Pkcs11Uri::parse(&pkcs11)?;
            let created = init_key(&uri)?;
            // Opened as the head-end will, with every check.
            Kek::from_pkcs11(&pkcs11)?;
            println!(
                "{} {uri:?}",
                if created {
                    "created the KEK:"
                } else {
                    "the KEK exists already:"
                }
            );
        }
        KekCommand::Rotate {
            from,
            to,
            database_url,
            accounts,
            dry_run,
        } => {
            let url =
                database_url.context("no database: set HES_DATABASE_URL or --database-url")?;
            let old = load(&from).context("--from")?;
            let new = load(&to).context("--to")?;
            let state = open_state(&url).await?;
            let (meters, revision) = all_meters(state.as_ref()).await?;
            let mut resealed = Vec::with_capacity(meters.len());
            let mut already = 0usize;
            for m in &meters {
                match m.reseal(&old, &new) {
                    Ok(keys) => {
                        let mut r = m.clone();
                        r.keys = keys;
                        resealed.push(r);
                    }
                    // Sealed under the new KEK by an earlier run: nothing to do for it.
                    Err(SecretError::Unseal) if m.open_keys(&new).is_ok() => already += 1,
                    Err(e) => {
                        return Err(e).with_context(|| format!("meter {}", m.id));
                    }
                }
            }
            let accounts = match accounts {
                Some(at) => Some(
                    hes_api::accounts::open(&at)
                        .await
                        .with_context(|| format!("the accounts database {at}"))?,
                ),
                None => None,
            };
            let mut keys = Vec::new();
            if let Some(a) = &accounts {
                for k in a.signing_keys().await? {
                    if let Some(r) = hes_api::auth::reseal_signing_key(&old, &new, &k)
                        .with_context(|| format!("API signing key {}", k.kid))?
                    {
                        keys.push(r);
                    }
                }
            }
            let mut hooks = Vec::new();
            for w in state.webhooks().await? {
                if let Some(s) = hes_api::webhooks::reseal_secret(&old, &new, &w)
                    .with_context(|| format!("webhook {}", w.id))?
                {
                    hooks.push((w.id, s));
                }
            }
            if dry_run {
                println!(
                    "would re-seal {} meters ({already} already under the new KEK), {} webhook \
                     secrets and {} API signing keys; nothing written",
                    resealed.len(),
                    hooks.len(),
                    keys.len()
                );
                return Ok(());
            }
            // Whatever changed since the read (a node still running) would be overwritten.
            let now = state.registry_revision().await?;
            anyhow::ensure!(
                now == revision,
                "the registry changed while re-sealing (revision {revision} → {now}): stop the \
                 head-end's nodes and run again"
            );
            let n = if resealed.is_empty() {
                0
            } else {
                state.import_meters(&resealed, true).await?
            };
            // Read back: every meter opens under the new KEK.
            let (after, _) = all_meters(state.as_ref()).await?;
            for m in &after {
                m.open_keys(&new)
                    .with_context(|| format!("meter {} after re-sealing", m.id))?;
            }
            println!(
                "re-sealed {n} meters under the new KEK ({already} were already); {} in the \
                 registry, all open under the new KEK",
                after.len()
            );
            let h = state.replace_webhook_secrets(&hooks).await?;
            println!("re-sealed {h} webhook secrets");
            // The keys after the meters: a failure here leaves the meters done, and a second
            // run finds them under the new KEK and does the keys.
            if let Some(a) = &accounts {
                let k = a.replace_signing_key_secrets(&keys).await?;
                println!("re-sealed {k} API signing keys");
            }
        }
    }
    Ok(())
}

/// Every meter of the registry and the revision read (pages by revision, then id).
async fn all_meters(state: &dyn hes_store::StateStore) -> anyhow::Result<(Vec<MeterRecord>, i64)> {
    let page_size = hes_store::MAX_PAGE;
    let mut out = Vec::new();
    let (mut since, mut after) = (0, None::<String>);
    let revision = state.registry_revision().await?;
    loop {
        let (page, _) = state
            .meters_since(since, after.as_deref(), page_size)
            .await?;
        let full = page.len() >= page_size;
        for m in page {
            since = m.revision;
            after = Some(m.record.id.0.clone());
            out.push(m.record);
        }
        if !full {
            break;
        }
    }
    Ok((out, revision))
}
