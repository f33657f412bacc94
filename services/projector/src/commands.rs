//! The subcommands.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use revocation_core::{FreshnessState, SessionEvent, SessionId, UserId, UserRevokedBefore};
use revocation_embed::Embedded;
use revocation_forward_auth::{ForwardAuth, SigningKey, jwks};
use revocation_http::Limits;
use revocation_kafka::{
    EventPublisher, JanitorOptions, KafkaSource, SourceOptions, TopicSpec, ensure_topic, run_janitor,
};
use revocation_postgres::{PgSessionLiveness, PgSessionTable};
use time::OffsetDateTime;

use crate::cli::{
    CdcHeartbeatQueryArgs, CreateTopicArgs, DemoArgs, EventKind, JanitorArgs, PgArgs, PublishArgs, ReplayArgs,
    ServeArgs, TokenArgs, TokenCommand,
};

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.embed_config().context("invalid configuration")?;
    config.validate().context("invalid configuration")?;
    let projection = Embedded::start(config).await.context("cannot start the projection")?;
    let mut state = projection.http_state().with_limits(Limits {
        request_timeout: args.request_timeout.into(),
        max_in_flight: args.max_in_flight,
        ..Limits::default()
    });
    if let Some(token) = args.admin_token().context("invalid configuration")? {
        match projection.admin(token).context("invalid configuration (--admin-token)")? {
            Some(admin) => state = state.with_admin(admin),
            None => tracing::warn!("--admin-token ignored: nothing to rebuild in postgres-only mode"),
        }
    }
    let mut extra = axum::Router::new();
    if let Some(config) = args.forward_auth_config().context("invalid configuration")? {
        let path = config.path.clone();
        let auth = ForwardAuth::start(config, projection.liveness(), Some(projection.tokens()))
            .await
            .context("cannot start the forward-auth endpoint")?;
        tracing::info!(path, "forward-auth endpoint on");
        let counts = auth.clone();
        state = state.with_scrape_hook(Arc::new(move || counts.counts().export()));
        extra = auth.router();
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another process using it?)", args.listen))?;
    tracing::info!(
        "listening on http://{0} — try: curl http://{0}/v1/sessions/<sid> · curl http://{0}/health/lag",
        args.listen
    );
    let watcher = projection.kafka().map(|k| tokio::spawn(log_state_changes(k.clone())));
    axum::serve(listener, revocation_http::app_with(state, extra))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    tracing::info!("shutting down");
    if let Some(w) = watcher {
        w.abort();
    }
    projection.shutdown().await;
    Ok(())
}

/// Logs every change of state (cold → live ⇄ lagging) with the staleness.
async fn log_state_changes(kafka: Arc<KafkaSource>) {
    let liveness = kafka.liveness();
    let mut last = None;
    loop {
        let state = liveness.state();
        if last != Some(state) {
            let status = liveness.status();
            let staleness_ms = status.freshness.staleness.map(|s| s.as_millis() as u64);
            match state {
                FreshnessState::Lagging => tracing::warn!(
                    staleness_ms,
                    offset_lag = status.freshness.offset_lag,
                    "projection is lagging: answering per the lag policy"
                ),
                _ => tracing::info!(staleness_ms, sessions = status.store.sessions, "projection is {}", state.as_str()),
            }
            last = Some(state);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

pub async fn janitor(args: JanitorArgs) -> anyhow::Result<()> {
    let config = args.kafka.config().context("invalid configuration")?;
    config.validate().context("invalid configuration")?;
    if args.max_session_lifetime.is_zero() {
        bail!("invalid configuration: --max-session-lifetime must be greater than zero");
    }
    if args.format.format().deletes_live_sessions() {
        bail!(
            "invalid configuration: --format {} reads change events of user_sessions, where Postgres is the source \
             of truth: clean up with the DELETE in docs/lifecycle.md (the connector turns it into tombstones), not \
             with the janitor",
            args.format.format().name()
        );
    }
    let options = JanitorOptions {
        format: args.format.format(),
        max_session_lifetime: args.max_session_lifetime.into(),
        grace: args.grace.into(),
        dry_run: args.dry_run,
        timeout: args.timeout.into(),
    };
    let report = run_janitor(&config, options).await.context("janitor failed")?;
    let verb = if args.dry_run { "would tombstone" } else { "tombstoned" };
    println!(
        "janitor: topic {:?}: {} records replayed, {} sessions held, {verb} {} in {:.3} s",
        config.topic,
        report.records,
        report.sessions,
        report.tombstoned,
        report.took.as_secs_f64()
    );
    Ok(())
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    if !args.dry_run {
        bail!("replay only runs with --dry-run (serve replays on start)");
    }
    let config = args.kafka.config().context("invalid configuration")?;
    config.validate().context("invalid configuration")?;
    let started = Instant::now();
    let options = SourceOptions {
        expected_sessions: args.expected_sessions,
        format: args.format.format(),
        ..SourceOptions::default()
    };
    let projection = KafkaSource::start(config.clone(), options).context("cannot start the feed")?;
    let liveness = projection.liveness();
    while liveness.state() != FreshnessState::Live {
        if started.elapsed() > *args.timeout {
            projection.shutdown().await;
            bail!("not caught up with {:?} after {:?}; is the broker reachable?", config.topic, args.timeout);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let status = liveness.status();
    let feed = projection.feed_stats().unwrap_or_default();
    projection.shutdown().await;
    let rate = feed.records as f64 / took.as_secs_f64().max(1e-9);
    println!("replayed topic {:?} ({} partitions) in {:.3} s", config.topic, feed.partitions, took.as_secs_f64());
    println!("  records        {:>12}  ({rate:.0} records/s)", feed.records);
    println!("  sessions       {:>12}", status.store.sessions);
    println!("  revoked        {:>12}", status.store.revoked);
    println!("  rejected       {:>12}  (malformed; their sessions count as revoked)", status.store.rejected);
    println!("  unknown types  {:>12}", status.store.unknown);
    Ok(())
}

pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let publisher =
        EventPublisher::new(&args.kafka.config().context("invalid configuration")?).context("invalid configuration")?;
    let sid = || -> anyhow::Result<SessionId> {
        let sid = args.sid.clone().with_context(|| format!("publish {:?} needs --sid", args.kind))?;
        SessionId::new(sid.clone()).with_context(|| format!("--sid {sid:?}"))
    };
    let ack = match args.kind {
        EventKind::Created => {
            let expires_at = args.expires_in.map(|d| now + *d);
            let event =
                SessionEvent::Created { sid: sid()?, user_id: args.user_id.clone(), created_at: now, expires_at };
            publisher.publish(&event).await?
        }
        EventKind::Revoked => {
            let event = SessionEvent::Revoked { sid: sid()?, revoked_at: now, reason: args.reason.clone() };
            publisher.publish(&event).await?
        }
        EventKind::Tombstone => publisher.publish(&SessionEvent::Tombstone { sid: sid()? }).await?,
        EventKind::RevokedBefore => {
            let user_id = UserId::new(args.user_id.clone()).with_context(|| format!("--user-id {:?}", args.user_id))?;
            publisher
                .publish_cutoff(&UserRevokedBefore { user_id, not_before: now, reason: args.reason.clone() })
                .await?
        }
    };
    println!("published to {} partition {} offset {}", args.kafka.topic, ack.partition, ack.offset);
    Ok(())
}

pub async fn migrate(args: PgArgs) -> anyhow::Result<()> {
    let pg = postgres(&args)?.context("--database-url (or DATABASE_URL) is required")?;
    pg.migrate().await?;
    println!("migrations applied to {}", pg.config().qualified_table());
    Ok(())
}

pub async fn create_topic(args: CreateTopicArgs) -> anyhow::Result<()> {
    let config = args.kafka.config().context("invalid configuration")?;
    let spec = TopicSpec { partitions: args.partitions, replication: args.replication, compacted: true };
    let created = ensure_topic(&config, spec)
        .await
        .with_context(|| format!("cannot create topic {:?} on {}", config.topic, config.bootstrap_servers))?;
    println!("topic {:?} {}", config.topic, if created { "created" } else { "already exists" });
    Ok(())
}

/// The table for operator commands (migrations, the demo's mirror), which
/// may wait longer than a fallback check.
fn postgres(args: &PgArgs) -> anyhow::Result<Option<PgSessionLiveness>> {
    let Some(mut config) = args.config()? else { return Ok(None) };
    config.acquire_timeout = config.acquire_timeout.max(Duration::from_secs(5));
    config.statement_timeout = config.statement_timeout.max(Duration::from_secs(30));
    Ok(Some(PgSessionLiveness::connect(&config)?))
}

/// The demo stream: three named sessions a newcomer can ask about, plus
/// volume. Written to Kafka and (when a database is given) mirrored into the
/// sessions table, as an auth service would, so cold-start answers agree.
pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let config = args.kafka.config().context("invalid configuration")?;
    ensure_topic(&config, TopicSpec::default())
        .await
        .with_context(|| format!("cannot create topic {:?} on {}", config.topic, config.bootstrap_servers))?;
    let table = match postgres(&args.pg)? {
        Some(pg) => {
            pg.migrate().await?;
            Some(PgSessionTable::new(pg.pool().clone(), pg.config()))
        }
        None => None,
    };
    let publisher = EventPublisher::new(&config)?;
    let now = OffsetDateTime::now_utc();
    let day = Duration::from_secs(86_400);
    let created = |sid: &str, expires_at| SessionEvent::Created {
        sid: SessionId::new(sid).expect("demo sids are valid"),
        user_id: format!("user-of-{sid}"),
        created_at: now,
        expires_at,
    };
    let revoked = |sid: &str| SessionEvent::Revoked {
        sid: SessionId::new(sid).expect("demo sids are valid"),
        revoked_at: now,
        reason: Some("logout".into()),
    };
    let mut events = vec![
        created("demo-alice", Some(now + day)),
        created("demo-bob", Some(now + day)),
        revoked("demo-bob"),
        created("demo-carol", Some(now - Duration::from_secs(3600))),
    ];
    for i in 0..args.sessions {
        let sid = uuid::Uuid::new_v4().to_string();
        events.push(created(&sid, Some(now + day)));
        if i % 10 == 0 {
            events.push(revoked(&sid));
        }
    }
    let started = Instant::now();
    for chunk in events.chunks(1_000) {
        for ack in futures::future::join_all(chunk.iter().map(|e| publisher.publish(e))).await {
            ack?;
        }
        if let Some(table) = &table {
            for e in chunk {
                table.record(e).await.context("mirroring the demo into Postgres")?;
            }
        }
    }
    println!(
        "published {} demo events to {:?} in {:.2} s{}",
        events.len(),
        config.topic,
        started.elapsed().as_secs_f64(),
        if table.is_some() { " (mirrored into Postgres)" } else { "" }
    );
    println!("  demo-alice  live");
    println!("  demo-bob    revoked");
    println!("  demo-carol  expired");
    Ok(())
}

pub fn cdc_heartbeat_query(args: CdcHeartbeatQueryArgs) -> anyhow::Result<()> {
    if args.partitions == 0 || args.partitions > 100_000 {
        bail!("invalid configuration: --partitions must be between 1 and 100000");
    }
    let valid = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !args.table.split('.').all(valid) || args.table.split('.').count() > 2 {
        bail!("invalid configuration: --table must be a plain [schema.]table name, e.g. public.user_sessions");
    }
    println!("{}", revocation_kafka::heartbeat_action_query(&args.table, args.partitions));
    Ok(())
}

/// `projector token jwks|mint`: prints a JWKS or a signed token.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let key_args = match &args.command {
        TokenCommand::Jwks(k) => k,
        TokenCommand::Mint(m) => &m.key,
    };
    let pem = std::fs::read(&key_args.key).with_context(|| format!("cannot read {}", key_args.key.display()))?;
    let key = SigningKey::from_pem(&pem, key_args.alg, key_args.kid.clone())?;
    match args.command {
        TokenCommand::Jwks(_) => println!("{}", serde_json::to_string_pretty(&jwks(&[&key])?)?),
        TokenCommand::Mint(m) => {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let ttl = Duration::from(m.ttl).as_secs() as i64;
            let mut claims = serde_json::json!({"iat": now, "exp": now + ttl});
            for (name, value) in [("sid", m.sid), ("sub", m.sub), ("iss", m.iss), ("aud", m.aud)] {
                if let Some(v) = value {
                    claims[name] = v.into();
                }
            }
            println!("{}", key.sign(&claims)?);
        }
    }
    Ok(())
}
