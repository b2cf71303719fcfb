//! `hes migrate`: applies the store's versioned schema migrations (PostgreSQL for a
//! `postgres://` URL, SQLite for a file path) and prints what it applied.

use clap::Args;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// `postgres://…` or an SQLite file path.
    #[arg(long, env = "HES_DATABASE_URL")]
    pub database_url: String,
}

pub async fn run(args: MigrateArgs) -> u8 {
    match hes_store::migrate(&args.database_url).await {
        Ok(applied) if applied.is_empty() => {
            println!("schema up to date");
            0
        }
        Ok(applied) => {
            let list: Vec<String> = applied.iter().map(u32::to_string).collect();
            println!("applied migrations {}", list.join(", "));
            0
        }
        Err(e) => {
            eprintln!("hes migrate: {e}");
            1
        }
    }
}
