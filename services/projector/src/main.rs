//! `projector`: the standalone session projection service and its operator
//! commands. Run with: cargo run -p projector -- --help
//!
//! - `serve` (default): replay the topic, answer checks over HTTP, report lag.
//! - `publish`, `create-topic`, `migrate`, `demo`: operator and demo tools.
//! - `replay --dry-run`: rebuild from the topic and report, serving nothing.
//! - `janitor`: tombstone sessions that can be forgotten (a cron job).
//! - `token jwks|mint`: a JWKS and signed tokens for trying forward-auth.
#![forbid(unsafe_code)]

mod cli;
mod commands;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat, ServeArgs, UnknownSettings};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    let unknown = UnknownSettings::among(&Cli::command(), names);
    for name in &unknown.unread {
        tracing::warn!(variable = %name, "the environment sets a PROJECTOR_ variable that no option reads");
    }
    if let Some(refusal) = unknown.refusal() {
        tracing::error!("{refusal}");
        // As clap ends on a bad flag.
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("projector: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or_else(|| Command::Serve(Box::new(ServeArgs::from_env()))) {
            Command::Serve(args) => commands::serve(*args).await,
            Command::Publish(args) => commands::publish(args).await,
            Command::Replay(args) => commands::replay(args).await,
            Command::Migrate(args) => commands::migrate(args).await,
            Command::CreateTopic(args) => commands::create_topic(args).await,
            Command::Demo(args) => commands::demo(args).await,
            Command::Janitor(args) => commands::janitor(args).await,
            Command::CdcHeartbeatQuery(args) => commands::cdc_heartbeat_query(args),
            Command::Token(args) => commands::token(args),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // One line, each cause once (library errors keep their causes as
        // `source`s, not in their own message); the log goes to stderr.
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    // Colours only for a person at a terminal, not in files and collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
