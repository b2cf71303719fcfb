//! `hes export`: the store's readings and aggregates to the Parquet warehouse
//! (`docs/warehouse.md`); prints a JSON summary.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use hes_store::{PgStore, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The embedded mode's data directory (its SQLite database `hes.db`); wins over
    /// --database-url.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` or an SQLite file path.
    #[arg(long, env = "HES_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The warehouse directory (`readings/date=…`, `aggregates/period=…/date=…`).
    #[arg(long)]
    pub out: PathBuf,
    /// First day (YYYY-MM-DD, UTC) or an RFC 3339 time in it; default: the earliest.
    #[arg(long)]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD, UTC, inclusive) or an RFC 3339 time in it; default: the latest.
    #[arg(long)]
    pub to: Option<String>,
}

/// Unix seconds of `YYYY-MM-DD` (its midnight, UTC) or of an RFC 3339 time.
fn parse_time(s: &str) -> anyhow::Result<i64> {
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &day) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s:?} is neither YYYY-MM-DD nor an RFC 3339 time"))?;
    Ok(t.unix_timestamp())
}

async fn export(args: ExportArgs) -> anyhow::Result<serde_json::Value> {
    let from = match &args.from {
        Some(s) => parse_time(s)?,
        None => hes_warehouse::MIN_TIME,
    };
    let to = match &args.to {
        Some(s) => parse_time(s)?,
        None => hes_warehouse::MAX_TIME,
    };
    let store: Box<dyn Store> = match (&args.data_dir, &args.database_url) {
        (Some(dir), _) => {
            let db = dir.join("hes.db");
            // Opening creates a database; an export of a mistyped directory should not.
            if !db.is_file() {
                bail!("no database at {}", db.display());
            }
            Box::new(SqliteStore::open(&db).await?)
        }
        (None, Some(url)) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Box::new(PgStore::connect(url).await?)
        }
        (None, Some(path)) => {
            if !std::path::Path::new(path).is_file() {
                bail!("no database at {path}");
            }
            Box::new(SqliteStore::open(path).await?)
        }
        (None, None) => bail!("give --data-dir or --database-url (or HES_DATABASE_URL)"),
    };
    let s = hes_warehouse::export_range(store.as_ref(), &args.out, from, to).await?;
    Ok(serde_json::json!({
        "out": args.out.display().to_string(),
        "files": s.files,
        "rows": s.rows,
        "partitions": s.partitions,
        "removed": s.removed,
    }))
}

pub async fn run(args: ExportArgs) -> u8 {
    match export(args).await {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("hes export: {e:#}");
            1
        }
    }
}
