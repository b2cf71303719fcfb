//! `hes`: the head-end system in one binary.

mod cim;
mod collect;
mod collector;
mod config;
mod demo;
mod export;
mod http;
mod jobs;
mod kek;
mod logs;
mod meters;
mod migrate;
mod pipeline;
mod push;
mod read;
mod scheduler;
mod serve;
mod sim;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hes",
    version,
    about = "Head-end system for DLMS/COSEM smart meters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read attributes of one meter (a DLMS client on the command line); prints JSON.
    Read(read::ReadArgs),
    /// Invoke a method of one meter; prints JSON.
    Action(read::ActionArgs),
    /// The embedded head-end with a simulated fleet: collection, pushes, the bus, in one process.
    Demo(demo::DemoArgs),
    /// One collection cycle over the meters of an inventory; prints a JSON summary.
    Collect(collect::CollectArgs),
    /// A collector of the distributed mode: takes jobs from Kafka (`hes.jobs`) in a consumer
    /// group and runs them.
    Collector(collector::CollectorArgs),
    /// Listen for meters' pushes (data notifications) and write what they carry.
    PushListen(push::PushArgs),
    /// Export the store's readings and aggregates to Parquet files partitioned by date.
    Export(export::ExportArgs),
    /// Apply the store's schema migrations (HES_DATABASE_URL or --database-url).
    Migrate(migrate::MigrateArgs),
    /// The meter registry in the store: import an inventory once, export, list.
    Meters(meters::MetersArgs),
    /// The key-encryption key: create it in a PKCS#11 token, rotate it (re-seals every secret).
    Kek(kek::KekArgs),
    /// The jobs in the store (every node's): list, show one, cancel.
    Jobs(jobs::JobsArgs),
    /// The node configuration: the annotated defaults, or what a node would run with.
    Config(config::ConfigArgs),
    /// The distributed roles (pipeline stages, collectors) from a TOML configuration.
    Serve(serve::ServeArgs),
    /// Run simulated meters (DLMS servers): one, or a fleet with inventory, faults and pushes.
    Sim(sim::SimArgs),
}

/// mimalloc rather than glibc's malloc: the sessions, frames and readings of a collector
/// allocate and free small blocks from many threads (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logs::init();
    // Before any role records: what is recorded while no recorder is installed is lost.
    hes_metrics::install();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let threads = match &cli.command {
        Command::Sim(a) => a.threads,
        Command::Collect(a) => a.threads,
        _ => None,
    };
    if let Some(n) = threads {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hes: cannot start the runtime: {e}");
            return std::process::ExitCode::from(70);
        }
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Read(a) => read::read(a).await,
            Command::Action(a) => read::action(a).await,
            Command::Sim(a) => sim::run(a).await,
            Command::Collect(a) => collect::run(a).await,
            Command::Demo(a) => demo::run(a).await,
            Command::Export(a) => export::run(a).await,
            Command::Migrate(a) => migrate::run(a).await,
            Command::Meters(a) => meters::run(a).await,
            Command::Jobs(a) => jobs::run(a).await,
            Command::Kek(a) => kek::run(a).await,
            Command::Config(a) => config::run(a),
            Command::Serve(a) => serve::run(a).await,
            Command::PushListen(a) => push::run(a).await,
            Command::Collector(a) => collector::run(a).await,
        }
    });
    std::process::ExitCode::from(code)
}
