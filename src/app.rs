//! Builds the store, binds the listener and runs the server until a shutdown signal.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::alerts::manager::AlertManager;
use crate::alerts::outbox::{Outbox, ReceiverSender};
use crate::alerts::receivers::directory::Directory;
use crate::alerts::receivers::Receivers;
use crate::alerts::rejected::RejectedSpikes;
use crate::alerts::reminders::Reminders;
use crate::alerts::routing::AlertingConfig;
use crate::collectors::feeds::FeedsConfig;
use crate::collectors::{Collectors, FeedContext};
use crate::config::IngestSettings;
use crate::config::{load_catalogue, Settings};
use crate::domain::Catalogue;
use crate::http::limits::Limits;
use crate::http::{self, AppState};
use crate::ingest::Ingestor;
use crate::leader::{self, Leadership};
use crate::live::feeds::FeedHealthRegistry;
use crate::live::ticket::Tickets;
use crate::live::view::Publisher;
use crate::live::{Hub, HubSettings};
use crate::pipeline::{Change, Pipeline};
use crate::report::schedule::{self, Scheduler};
use crate::rules::engine::Engine;
use crate::rules::replay::tick_at_or_after;
use crate::store::{self, Backend, DynStore};
use crate::writer::{Writer, WriterSettings};

/// Everything `serve` needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_dir: PathBuf,
    pub database_url: String,
    pub listen: Option<SocketAddr>,
    pub demo: bool,
}

/// Loads settings, the feeds and the catalogue, failing with every problem named.
pub fn load_config(
    config_dir: &std::path::Path,
) -> anyhow::Result<(Settings, FeedsConfig, Catalogue)> {
    let settings = Settings::load(config_dir, std::env::vars())?;
    let feeds = FeedsConfig::load(config_dir)?;
    let catalogue = load_catalogue(config_dir)?;
    Ok((settings, feeds, catalogue))
}

/// Opens the store and brings the configured targets into it.
pub async fn open_store(
    url: &str,
    settings: &Settings,
    catalogue: &Catalogue,
) -> anyhow::Result<DynStore> {
    let store = store::connect_with(url, settings.zone(), settings.limits.db_acquire_timeout())
        .await
        .with_context(|| format!("cannot open the store at {}", store::redact_url(url)))?;
    // Recorded before the configured targets' first versions, so that a new database judges
    // its targets from their creation on by the start of lateness (`rules::staleness`).
    store.first_start(Utc::now()).await?;
    store.seed_targets(&catalogue.targets, Utc::now()).await?;
    store::tasks::seed(
        &store,
        &catalogue.directives,
        &catalogue.tasks,
        Utc::now(),
        settings.zone(),
    )
    .await?;
    Ok(crate::auth::cache::CachedStore::wrap(
        store,
        settings.tokens.cache(),
    ))
}

/// Tickets outstanding at once over all tokens (each token also has its own share): a bound
/// on memory, far above every screen of a city reconnecting together.
const MAX_OUTSTANDING_TICKETS: usize = 100_000;

/// A built application: the listener is bound, so `port()` is known before `run`.
pub struct App {
    listener: TcpListener,
    state: AppState,
    outbox: Arc<Outbox>,
    reminders: Arc<Reminders>,
    rejected_spikes: Arc<RejectedSpikes>,
    reports: Scheduler,
    writer: Arc<Writer>,
    demo: bool,
    /// Where following other instances' commits starts (PostgreSQL): taken before the engine
    /// loads, so nothing committed meanwhile is missed (ARCHITECTURE §7).
    follow_from: Option<u64>,
}

/// The instant lateness is judged from: the local day `[release_calendar] staleness_from`
/// begins on, else the service's first start as the store recorded it (ARCHITECTURE §4).
fn judged_from(settings: &Settings, first_start: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    settings
        .release_calendar
        .staleness_from
        .map_or(first_start, |day| {
            crate::domain::Period::Day(day).start(settings.zone())
        })
}

/// The writer's bounds as configured under `[ingest]`.
pub fn writer_settings(ingest: &IngestSettings) -> WriterSettings {
    WriterSettings {
        queue_batches: ingest.write_queue_batches,
        queue_rows: ingest.write_queue_rows,
        group_rows: ingest.write_group_rows,
        group_batches: ingest.write_group_batches,
        group_wait: Duration::from_millis(ingest.write_group_wait_ms),
        ..WriterSettings::default()
    }
}

impl App {
    pub async fn build(options: Options) -> anyhow::Result<Self> {
        let (mut settings, feeds, catalogue) = load_config(&options.config_dir)?;
        let alerting = AlertingConfig::load(&options.config_dir)?;
        if let Some(listen) = options.listen {
            settings.server.listen = listen;
        }
        let store = open_store(&options.database_url, &settings, &catalogue).await?;
        tracing::info!(
            backend = store.backend().as_str(),
            indicators = catalogue.indicators.len(),
            "store ready"
        );
        let instance = leader::instance_name(settings.server.instance_name.as_deref());
        // Several instances may share a PostgreSQL database, and one of them leads; the lock is
        // tried before serving, so an instance alone on its database leads from its start.
        let leadership = match store.backend() {
            Backend::Sqlite => Leadership::single(instance),
            Backend::Postgres | Backend::Timescale => {
                Leadership::postgres(&options.database_url, instance).await?
            }
        };
        tracing::info!(
            instance = leadership.instance(),
            leader = leadership.is_leader(),
            "leadership"
        );
        Self::from_parts_led(
            settings,
            feeds,
            catalogue,
            store,
            alerting,
            options.demo,
            Some(leadership),
        )
        .await
    }

    /// Builds from already loaded parts (tests use this to share one store setup), as the one
    /// instance on its database: it always leads.
    pub async fn from_parts(
        settings: Settings,
        feeds: FeedsConfig,
        catalogue: Catalogue,
        store: DynStore,
        alerting: AlertingConfig,
        demo: bool,
    ) -> anyhow::Result<Self> {
        Self::from_parts_led(settings, feeds, catalogue, store, alerting, demo, None).await
    }

    /// `leadership`, when given, says whether this instance leads; otherwise it always does.
    async fn from_parts_led(
        settings: Settings,
        feeds: FeedsConfig,
        catalogue: Catalogue,
        store: DynStore,
        alerting: AlertingConfig,
        demo: bool,
        leadership: Option<Leadership>,
    ) -> anyhow::Result<Self> {
        let leadership = Arc::new(leadership.unwrap_or_else(|| {
            Leadership::single(leader::instance_name(
                settings.server.instance_name.as_deref(),
            ))
        }));
        // Checked before anything binds or starts: a collector naming an unknown department
        // is a configuration error.
        let feed_health = Arc::new(FeedHealthRegistry::for_config(&feeds, &catalogue)?);
        if let Some((key, message)) = feeds.catalogue_problems(&catalogue).first() {
            anyhow::bail!("config/feeds.toml: {key}: {message}");
        }
        if let Some((key, message)) = settings.approval.catalogue_problems(&catalogue).first() {
            anyhow::bail!("config/ktxh.toml: {key}: {message}");
        }
        let outbound = Arc::new(settings.outbound.policy().map_err(|problems| {
            let (key, message) = problems.into_iter().next().unwrap_or_default();
            anyhow::anyhow!("config/ktxh.toml: {key}: {message}")
        })?);
        if let Some((key, message)) = feeds.outbound_problems(&outbound).first() {
            anyhow::bail!("config/feeds.toml: {key}: {message}");
        }
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.server.listen))?;
        let mut alerting = alerting;
        alerting.link_to_server(listener.local_addr()?);
        let mut settings = settings;
        settings.release_calendar.judged_from =
            Some(judged_from(&settings, store.first_start(Utc::now()).await?));
        let settings = Arc::new(settings);
        let catalogue = Arc::new(catalogue);
        let follow_from = store.commit_horizon().await?;
        let engine = Arc::new(
            Engine::load(
                catalogue.clone(),
                &store,
                settings.zone(),
                settings.release_calendar.clone(),
                settings.rules.hysteresis(),
                settings.rules.evaluation_interval(),
                Utc::now(),
            )
            .await?
            .with_rollup_difference(settings.rules.rollup_difference),
        );
        let alerts = Arc::new(
            AlertManager::load(
                store.clone(),
                catalogue.clone(),
                alerting.route.clone(),
                alerting.links_to().to_owned(),
            )
            .await?,
        );
        // Only the leader commits alerts; another instance that takes the lead later reads
        // them again and reconciles then (`Pipeline::lead`).
        if leadership.is_leader() {
            alerts
                .reconcile(&engine.statuses(|_| true), Utc::now())
                .await?;
            // A task that fell overdue while the service was down is an alert from the start.
            let now = Utc::now();
            let today = now.with_timezone(&settings.zone()).date_naive();
            alerts
                .reconcile_tasks(&store.tasks(None).await?, today, now)
                .await?;
        }
        let sender = Arc::new(
            ReceiverSender::build(&alerting.receiver, &outbound)?
                .with_directory(Directory::new(&catalogue, settings.zone())),
        );
        let report_receivers = Arc::new(Receivers::build(&alerting.receiver, &outbound)?);
        let problems = schedule::problems(&alerting.report, &report_receivers, &catalogue);
        if let Some((key, message)) = problems.first() {
            anyhow::bail!("config/alerting.toml: {key}: {message}");
        }
        let report_schedules = alerting.report.clone();
        let reminders = Arc::new(Reminders::new(
            store.clone(),
            engine.clone(),
            catalogue.clone(),
            &alerting,
            settings.release_calendar.clone(),
            settings.zone(),
        ));
        let rejected_spikes = Arc::new(RejectedSpikes::new(
            store.clone(),
            alerts.clone(),
            alerting.rejected_spike.clone(),
        ));
        let outbox = Arc::new(
            Outbox::new(store.clone(), alerts.clone(), sender, alerting)
                .claiming_as(leadership.instance()),
        );
        let live = &settings.live;
        let hub = Arc::new(Hub::new(HubSettings {
            ring_capacity: live.ring_capacity,
            queue_capacity: live.queue_capacity,
        }));
        let publisher = Arc::new(
            Publisher::new(
                hub,
                catalogue.clone(),
                engine.clone(),
                alerts.clone(),
                settings.zone(),
            )?
            .with_feed_health(feed_health.clone())
            .with_explanations(store.current_explanations(None, None).await?)
            .with_tasks(store.tasks(None).await?)
            .with_approvals(
                crate::live::approvals::ApprovalStates::load(&store, settings.zone(), Utc::now())
                    .await?,
            ),
        );
        let tickets = Arc::new(Tickets::new(
            chrono::Duration::seconds(live.ticket_seconds),
            settings.limits.ws_tickets_per_token,
            MAX_OUTSTANDING_TICKETS,
        ));
        let pipeline = Arc::new(
            Pipeline::new(
                engine.clone(),
                store.clone(),
                alerts.clone(),
                publisher.clone(),
                settings.zone(),
            )
            .with_leadership(leadership.subscribe()),
        );
        let writer = Arc::new(Writer::spawn(
            store.clone(),
            pipeline.clone(),
            writer_settings(&settings.ingest),
        ));
        let ingestor = Arc::new(Ingestor::new(
            catalogue.clone(),
            store.clone(),
            writer.clone(),
            settings.zone(),
            settings.ingest.clone(),
            settings.server.max_rows_per_request,
        ));
        let limits = Arc::new(Limits::new(&settings.limits));
        let token_standing = Arc::new(crate::live::connection::TokenStanding::new(
            store.clone(),
            Duration::from_secs(settings.live.token_recheck_seconds),
        ));
        let state = AppState {
            settings,
            catalogue,
            store,
            ingestor,
            engine,
            alerts,
            publisher,
            pipeline,
            tickets,
            feeds: feed_health,
            feed_config: Arc::new(feeds),
            leadership,
            limits,
            token_standing,
        };
        let reports = Scheduler {
            schedules: report_schedules,
            receivers: report_receivers,
            settings: state.settings.clone(),
            catalogue: state.catalogue.clone(),
            engine: state.engine.clone(),
            store: state.store.clone(),
        };
        Ok(Self {
            listener,
            state,
            outbox,
            reminders,
            rejected_spikes,
            reports,
            writer,
            demo,
            follow_from,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests finish (bounded by
    /// the configured grace period) so no batch is left half-answered.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let grace = Duration::from_secs(self.state.settings.server.shutdown_grace_seconds);
        if self.demo {
            let demo = crate::demo::Demo::new(self.state.clone(), addr);
            demo.start(shutdown.clone()).await?;
        }
        let leadership = self.state.leadership.clone();
        // Watching before the campaign starts: it sees leadership as the build did.
        spawn_leading_reconcile(
            self.state.pipeline.clone(),
            leadership.subscribe(),
            shutdown.clone(),
        );
        leadership.spawn(shutdown.clone());
        self.outbox
            .clone()
            .spawn(shutdown.clone(), leadership.subscribe());
        self.reports.spawn(shutdown.clone(), leadership.subscribe());
        self.reminders
            .clone()
            .spawn(shutdown.clone(), leadership.subscribe());
        self.rejected_spikes
            .clone()
            .spawn(shutdown.clone(), leadership.subscribe());
        let publisher = self.state.publisher.clone();
        let closing = shutdown.clone();
        tokio::spawn(async move {
            closing.cancelled().await;
            publisher.closing().cancel();
        });
        if let Some(cursor) = self.follow_from {
            crate::pipeline::follow::spawn(
                self.state.store.clone(),
                self.state.pipeline.clone(),
                cursor,
                shutdown.clone(),
            );
        }
        spawn_evaluation_timer(
            self.state.pipeline.clone(),
            Duration::from_secs(self.state.settings.rules.evaluation_interval_seconds),
            shutdown.clone(),
        );
        let collectors = Collectors::spawn_while_leading(
            FeedContext {
                settings: self.state.settings.clone(),
                feeds: self.state.feed_config.clone(),
                store: self.state.store.clone(),
                ingestor: self.state.ingestor.clone(),
                publisher: self.state.publisher.clone(),
                health: self.state.feeds.clone(),
            },
            shutdown.clone(),
            leadership.subscribe(),
        );
        self.state
            .limits
            .clone()
            .spawn_housekeeping(shutdown.clone());
        tracing::info!(%addr, "listening");
        let limits = self.state.settings.limits.clone();
        let router = http::router(self.state);
        let server = http::serve::serve(self.listener, router, &limits, shutdown.clone());
        let mut server = std::pin::pin!(server);
        tokio::select! {
            result = &mut server => result?,
            () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time");
            }
        }
        // A collector may be storing a batch; it stops right after, so the next instance on
        // this database starts from its saved cursor.
        if tokio::time::timeout(grace, collectors.stopped())
            .await
            .is_err()
        {
            tracing::warn!("collectors did not stop in time");
        }
        // Whatever is still queued was accepted for writing: it is written and answered
        // before the process ends, and nothing new is taken.
        let writer = self.writer;
        writer.close();
        if tokio::time::timeout(grace, writer.stopped()).await.is_err() {
            tracing::warn!("the writer did not drain its queue in time");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Re-evaluates every target on a timer: staleness and the passage of time change statuses
/// without any new observation. The ticks fall on multiples of `every` from the Unix epoch and
/// each is evaluated at its own instant, late or not, so that the evaluations are those a
/// replay of the store counts (ARCHITECTURE §8).
fn spawn_evaluation_timer(pipeline: Arc<Pipeline>, every: Duration, shutdown: CancellationToken) {
    let step = chrono::Duration::from_std(every).unwrap_or_else(|_| chrono::Duration::minutes(1));
    tokio::spawn(async move {
        // The engine was loaded with the ticks up to its build instant; none is left out.
        let built = pipeline.engine().built_at();
        let mut next = tick_at_or_after(built + chrono::Duration::microseconds(1), step);
        loop {
            let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            pipeline.apply(Change::Tick(next)).await;
            next += step;
        }
    });
}

/// Each time this instance comes to lead, its pipeline takes over the alerts another instance
/// committed until then (`Pipeline::lead`). Leading from the start needs nothing: the build
/// reconciled them.
fn spawn_leading_reconcile(
    pipeline: Arc<Pipeline>,
    mut leading: tokio::sync::watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            if *leading.borrow() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = leader::until_not_leading(&mut leading) => {}
                }
            }
            if !leader::until_leading(&mut leading, &shutdown).await {
                return;
            }
            let applied = pipeline.lead(Utc::now()).await;
            tracing::info!(
                targets = applied.reconciled,
                alerts = applied.alerts.len(),
                "took the lead: alerts reconciled"
            );
        }
    });
}

/// Cancels `token` on SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
        tracing::info!("shutdown signal received");
        token.cancel();
    });
}
