//! Configuration of the Postgres adapter.

use std::fmt;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use thiserror::Error;

/// A configuration the adapter cannot use; the message says which option and why.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PgConfigError {
    /// A schema or table name is not a plain SQL identifier.
    #[error(
        "{what} {name:?} is not a plain identifier: use 1 to 63 characters of a-z, 0-9 and _, starting with a letter or _"
    )]
    BadIdentifier {
        /// `schema` or `table`.
        what: &'static str,
        /// The rejected name.
        name: String,
    },
    /// The database URL does not parse.
    #[error("database URL is not valid")]
    BadUrl(#[source] sqlx::Error),
    /// The database URL is not a Postgres URL.
    #[error("database URL must start with postgres:// or postgresql://")]
    NotPostgres,
    /// A timeout is zero.
    #[error("{0} must be greater than zero")]
    ZeroTimeout(&'static str),
    /// The pool size is zero.
    #[error("max_connections must be at least 1")]
    ZeroConnections,
}

/// A validated SQL identifier (schema or table name), rendered quoted.
///
/// Only lowercase letters, digits and `_`, starting with a letter or `_`, at
/// most 63 bytes: what Postgres folds unquoted names to, so the quoted form
/// names the same object a deployment created without quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier(String);

impl Identifier {
    /// Validates `name` as the `what` (`"schema"` or `"table"`).
    pub fn new(what: &'static str, name: &str) -> Result<Self, PgConfigError> {
        let ok_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let ok_rest = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok_start && ok_rest && name.len() <= 63 {
            Ok(Self(name.to_owned()))
        } else {
            Err(PgConfigError::BadIdentifier { what, name: name.to_owned() })
        }
    }

    /// The bare name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// How to reach the sessions table.
///
/// Its `Debug` output hides the URL's password, so a config can be logged.
#[derive(Clone)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Schema holding the table. Default: `public`.
    pub schema: Identifier,
    /// Table name. Default: `user_sessions`.
    pub table: Identifier,
    /// Pool size. Default: 8.
    pub max_connections: u32,
    /// Longest wait for a pooled connection (or a new one). Default: 250 ms.
    pub acquire_timeout: Duration,
    /// Longest a check's query may run, enforced by the server
    /// (`statement_timeout`) and by the client (a stalled server). Default: 250 ms.
    pub statement_timeout: Duration,
}

impl fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &redacted_url(&self.url))
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// `url` with every password replaced: the one between `user:` and `@`,
/// and the value of any query parameter whose name ends in `password`
/// (`?password=…`, `sslpassword=…`).
fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "<unparsed>".into() };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let authority = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:<redacted>@{host}"),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    let Some(query) = query else { return format!("{scheme}://{authority}") };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => format!("{name}=<redacted>"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{scheme}://{authority}?{}", query.join("&"))
}

impl PgConfig {
    /// Defaults, for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: Identifier(Self::DEFAULT_SCHEMA.into()),
            table: Identifier(Self::DEFAULT_TABLE.into()),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Self::DEFAULT_TIMEOUT,
            statement_timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Default of [`Self::schema`].
    pub const DEFAULT_SCHEMA: &str = "public";
    /// Default of [`Self::table`]: the table of the seed port's adapter.
    pub const DEFAULT_TABLE: &str = "user_sessions";
    /// Default of [`Self::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
    /// Default of [`Self::acquire_timeout`] and [`Self::statement_timeout`]:
    /// a fallback check that takes longer answers `Transient`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

    /// Sets both the acquire and the statement timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self.statement_timeout = timeout;
        self
    }

    /// Sets the schema, validated.
    pub fn schema(mut self, schema: &str) -> Result<Self, PgConfigError> {
        self.schema = Identifier::new("schema", schema)?;
        Ok(self)
    }

    /// Sets the table, validated.
    pub fn table(mut self, table: &str) -> Result<Self, PgConfigError> {
        self.table = Identifier::new("table", table)?;
        Ok(self)
    }

    /// `"schema"."table"`, safe to splice into SQL.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The per-user cutoffs table, `user_session_cutoffs` in the same
    /// schema (the migration creates it beside the sessions table).
    pub fn qualified_cutoffs(&self) -> String {
        format!("{}.user_session_cutoffs", self.schema)
    }

    /// A lazily connecting pool: nothing is dialled until the first query,
    /// so a process can start while the database is down. Call it inside a
    /// Tokio runtime.
    pub fn pool(&self) -> Result<PgPool, PgConfigError> {
        let options = self.connect_options()?;
        Ok(PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_lazy_with(options))
    }

    /// Checks every option without connecting; the error names the first bad one.
    pub fn validate(&self) -> Result<(), PgConfigError> {
        self.connect_options().map(drop)
    }

    fn connect_options(&self) -> Result<PgConnectOptions, PgConfigError> {
        if self.acquire_timeout.is_zero() {
            return Err(PgConfigError::ZeroTimeout("acquire_timeout"));
        }
        if self.statement_timeout.is_zero() {
            return Err(PgConfigError::ZeroTimeout("statement_timeout"));
        }
        if self.max_connections == 0 {
            return Err(PgConfigError::ZeroConnections);
        }
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(PgConfigError::NotPostgres);
        }
        let options: PgConnectOptions = self.url.parse().map_err(PgConfigError::BadUrl)?;
        Ok(options
            .application_name("revocation-projection")
            .options([("statement_timeout", format!("{}ms", self.statement_timeout.as_millis()))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let shown = format!("{:?}", PgConfig::new("postgres://app:hunter2@db:5432/app?sslmode=require"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("postgres://app:<redacted>@db:5432/app?sslmode=require"), "{shown}");
        for (url, redacted) in [
            ("postgres://db/app?user=app&password=hunter2", "postgres://db/app?user=app&password=<redacted>"),
            (
                "postgres://app@db/app?sslpassword=hunter2&sslmode=verify-full",
                "postgres://app@db/app?sslpassword=<redacted>&sslmode=verify-full",
            ),
            ("postgres://app:hunter2@db/app?Password=hunter2", "postgres://app:<redacted>@db/app?Password=<redacted>"),
        ] {
            let shown = format!("{:?}", PgConfig::new(url));
            assert!(!shown.contains("hunter2") && shown.contains(redacted), "{shown}");
        }
    }

    #[test]
    fn identifiers_are_plain_names_only() {
        for ok in ["public", "scrcall", "user_sessions", "_x1"] {
            assert!(Identifier::new("schema", ok).is_ok(), "{ok}");
        }
        for bad in ["", "1abc", "Public", "a-b", "a.b", "x\"; DROP TABLE t; --", "séance", &"a".repeat(64)] {
            assert!(Identifier::new("schema", bad).is_err(), "{bad}");
        }
        let err = PgConfig::new("postgres://x").table("a b").unwrap_err().to_string();
        assert!(err.contains("table \"a b\" is not a plain identifier"), "{err}");
    }

    #[test]
    fn the_table_is_quoted() {
        let config = PgConfig::new("postgres://x").schema("scrcall").unwrap();
        assert_eq!(config.qualified_table(), "\"scrcall\".\"user_sessions\"");
    }

    #[tokio::test]
    async fn bad_urls_and_timeouts_are_rejected_with_the_option_named() {
        assert!(matches!(PgConfig::new("mysql://nope").pool(), Err(PgConfigError::NotPostgres)));
        assert!(matches!(PgConfig::new("postgres://u@h:notaport/db").pool(), Err(PgConfigError::BadUrl(_))));
        let mut config = PgConfig::new("postgres://u@127.0.0.1/db");
        config.statement_timeout = Duration::ZERO;
        assert_eq!(config.pool().unwrap_err().to_string(), "statement_timeout must be greater than zero");
    }
}
