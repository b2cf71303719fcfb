//! `hes config default` prints the node's configuration with every key, its default and what
//! it does; `hes config show --config FILE` prints what a node would run with (the defaults,
//! the file, the environment), or why the file is refused.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every key with its default, annotated (a starting point for `hes serve --config`).
    Default,
    /// The configuration a node would run with: the defaults, then FILE, then the environment.
    Show {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub fn run(args: ConfigArgs) -> u8 {
    match args.command {
        ConfigCommand::Default => {
            print!("{}", hes_node::DEFAULT_TOML);
            0
        }
        ConfigCommand::Show { config } => match hes_node::Config::load(config.as_deref()) {
            Ok(c) => match toml::to_string_pretty(&c) {
                Ok(t) => {
                    print!("{t}");
                    0
                }
                Err(e) => {
                    eprintln!("hes config: {e}");
                    1
                }
            },
            Err(e) => {
                eprintln!("hes config: {e}");
                1
            }
        },
    }
}
