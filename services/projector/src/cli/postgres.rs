//! The database flags: the fallback, the baseline and the tools that read the table.

use std::path::PathBuf;

use clap::Args;
use humantime::Duration as Span;
use revocation_embed::PgConfig;

use super::{ArgsError, duration};

/// Where the sessions table is.
#[derive(Debug, Clone, Args)]
pub struct PgArgs {
    /// Postgres URL of the sessions table (the cold-start fallback). Without
    /// it, a cold projection answers 503.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file holding the Postgres URL (its password would show in `ps` as a
    /// flag). Takes precedence over --database-url.
    #[arg(long, env = "DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Schema of the sessions table.
    #[arg(long, env = "PROJECTOR_PG_SCHEMA", default_value_t = PgConfig::DEFAULT_SCHEMA.to_owned())]
    pub pg_schema: String,
    /// Name of the sessions table.
    #[arg(long, env = "PROJECTOR_PG_TABLE", default_value_t = PgConfig::DEFAULT_TABLE.to_owned())]
    pub pg_table: String,
    /// Pool-acquire and statement timeout of one fallback check.
    #[arg(long, env = "PROJECTOR_PG_TIMEOUT", default_value_t = PgConfig::DEFAULT_TIMEOUT.into(), value_parser = duration)]
    pub pg_timeout: Span,
}

impl PgArgs {
    /// The Postgres adapter's configuration, when a database URL is given:
    /// the one place these flags become a [`PgConfig`].
    pub fn config(&self) -> Result<Option<PgConfig>, ArgsError> {
        let url = match (&self.database_url, &self.database_url_file) {
            (_, Some(path)) => {
                let url = std::fs::read_to_string(path).map_err(|e| ArgsError::File(path.clone(), e))?;
                let url = url.trim();
                if url.is_empty() {
                    return Err(ArgsError::EmptyUrlFile(path.clone()));
                }
                url.to_owned()
            }
            (Some(url), None) => url.clone(),
            (None, None) => return Ok(None),
        };
        let config = PgConfig::new(url).schema(&self.pg_schema)?.table(&self.pg_table)?;
        Ok(Some(config.timeout(self.pg_timeout.into())))
    }
}
