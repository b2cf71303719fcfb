//! `hes jobs`: the jobs in the store, from the command line: a list (newest first, filtered),
//! one job, a cancel. Every node's jobs are there, scheduled ones included.

use anyhow::Context;
use clap::{Args, Subcommand};
use hes_model::{Job, JobState, MeterId};
use hes_store::JobFilter;

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// `postgres://…` or an SQLite file path.
    #[arg(long, env = "HES_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Option<JobsCommand>,
    /// Only this meter's jobs.
    #[arg(long)]
    pub meter: Option<String>,
    /// Only jobs in this state: queued, running, retrying, succeeded, failed, cancelled.
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON document per job instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// One job, as JSON.
    Show { id: u64 },
    /// Cancel a job that has not started.
    Cancel { id: u64 },
}

pub async fn run(args: JobsArgs) -> u8 {
    match jobs(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hes jobs: {e:#}");
            1
        }
    }
}

fn parse_state(s: &str) -> anyhow::Result<JobState> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .with_context(|| format!("unknown job state {s:?}"))
}

fn line(j: &Job) -> String {
    format!(
        "{:>8}  {:<16} {:<22} {:<9} {}/{}  {:<12} {}",
        j.id,
        j.meter,
        serde_json::to_value(&j.kind)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(String::from))
            .unwrap_or_default(),
        serde_json::to_value(j.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        j.attempts,
        j.max_attempts,
        j.requested_by,
        j.last_error.as_deref().unwrap_or("")
    )
}

async fn jobs(args: JobsArgs) -> anyhow::Result<u8> {
    let url = args
        .database_url
        .context("no database: set HES_DATABASE_URL or --database-url")?;
    let state = crate::meters::open_state(&url).await?;
    match args.command {
        Some(JobsCommand::Show { id }) => match state.job(id).await? {
            Some(j) => {
                println!("{}", serde_json::to_string_pretty(&j)?);
                Ok(0)
            }
            None => {
                eprintln!("hes jobs: no job {id}");
                Ok(1)
            }
        },
        Some(JobsCommand::Cancel { id }) => {
            let now = hes_collector::session::unix_now();
            if state.cancel_job(id, now).await? {
                println!("job {id} cancelled");
                Ok(0)
            } else {
                eprintln!("hes jobs: job {id} is running, finished or unknown: not cancelled");
                Ok(1)
            }
        }
        None => {
            let filter = JobFilter {
                meter: args.meter.map(MeterId),
                state: args.state.as_deref().map(parse_state).transpose()?,
                ..JobFilter::default()
            };
            let (list, total) = state.list_jobs(&filter, 0, args.limit).await?;
            if args.json {
                for j in &list {
                    println!("{}", serde_json::to_string(j)?);
                }
            } else {
                println!(
                    "{total} jobs{}",
                    if total as usize > list.len() {
                        format!(", the newest {}", list.len())
                    } else {
                        String::new()
                    }
                );
                for j in &list {
                    println!("{}", line(j));
                }
            }
            Ok(0)
        }
    }
}
