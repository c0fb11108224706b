//! The command line of the `ktxh` binary: `serve`, `migrate`, `config check`, `token`,
//! `import`, `report`, `backup` and `audit`. The binary's own `main` only calls [`main`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::alerts::receivers::Receivers;
use crate::alerts::routing::AlertingConfig;
use crate::app::{self, App, Options};
use crate::auth::{self, Role, TokenRecord};
use crate::collectors::feeds::FeedsConfig;
use crate::collectors::import::{self, ImportOptions, ReportedAt};
use crate::config::{load_catalogue, Settings};
use crate::domain::approval::History;
use crate::domain::Code;
use crate::ingest::csv::Decimal;
use crate::ingest::line::Precision;
use crate::ingest::Format;
use crate::live::feeds::FeedHealthRegistry;
use crate::store::audit::ChainCheck;
use crate::store::AuditEvent;
use anyhow::Context as _;
use chrono::{Duration, Utc};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// `println!` for a command's output: when its reader stops early (`ktxh token list | head`)
/// the command ends quietly, as Unix tools do, where `println!` would panic.
macro_rules! say {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

fn print_line(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{line}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {error}");
        std::process::exit(1);
    }
}

/// KT-XH Live: a city's yearly socio-economic targets, watched in real time.
#[derive(Parser)]
#[command(name = "ktxh", version, about)]
struct Cli {
    /// Configuration directory (ktxh.toml, catalogue/, targets/).
    #[arg(long, global = true, default_value = "config", value_name = "DIR")]
    config: PathBuf,
    /// sqlite://FILE or postgres://USER@HOST/DB (TimescaleDB is used when present).
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        default_value = "sqlite://data/ktxh.db",
        hide_env_values = true
    )]
    database_url: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Seed a year and a half of history and keep simulated department feeds running.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// API token commands.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Audit log commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Back-fill history from a file straight into the store, validated as a push would be.
    ///
    /// An interrupted import continues where it stopped when run again on the same file.
    Import(ImportArgs),
    /// Write the period report: every target judged as known at the period's cut-off.
    Report(ReportArgs),
    /// Copy the database to FILE while the service runs: SQLite with VACUUM INTO, PostgreSQL
    /// and TimescaleDB with pg_dump's custom format (pg_restore brings it back).
    Backup {
        /// Where to write; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The file to read.
    file: PathBuf,
    /// The file's format: csv and line are streamed; the others are read whole.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(Format::NAMES))]
    format: String,
    /// Scope the rows as for this department's token: a row of another department's
    /// indicator refuses the whole file. Without it, rows are scoped as for an admin.
    #[arg(long, value_name = "CODE")]
    department: Option<String>,
    /// Validate every row and print the summary; store nothing and save no position.
    #[arg(long)]
    dry_run: bool,
    /// Start from the first row even if an earlier run of this file saved a position.
    #[arg(long)]
    restart: bool,
    /// Rows written per transaction.
    #[arg(
        long,
        default_value_t = import::DEFAULT_BATCH_ROWS as u64,
        value_parser = clap::value_parser!(u64).range(1..=import::MAX_BATCH_ROWS as u64)
    )]
    batch_rows: u64,
    /// csv, json: numbers are written with a decimal comma (`1.234,5`); without it a json
    /// value written as text with a comma (`"1,234"`) is refused as ambiguous.
    #[arg(long)]
    decimal_comma: bool,
    /// line: the unit of the timestamps, as InfluxDB's write APIs name it.
    #[arg(
        long,
        default_value = "ns",
        value_parser = clap::builder::PossibleValuesParser::new(["ns", "us", "ms", "s", "m", "h"])
    )]
    precision: String,
    /// When the figures became known, for rows without a reported_at of their own: an RFC 3339
    /// instant, or `release-calendar` for the due date of each row's period under
    /// [release_calendar] (now, if that is still ahead). By default, when they are stored.
    /// Rows known more than [ingest] reported_at_backdate_days ago are audited.
    #[arg(long, value_name = "RFC3339|release-calendar", value_parser = ReportedAt::parse)]
    reported_at: Option<ReportedAt>,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// A month (2026-03), a quarter (2026-Q1) or a year (2026).
    #[arg(long)]
    period: String,
    #[arg(long, value_parser = ["html", "xlsx", "csv"], default_value = "html")]
    format: String,
    #[arg(long, value_parser = ["vi", "en"], default_value = "vi")]
    lang: String,
    /// The unit whose targets are reported (the city by default).
    #[arg(long)]
    unit: Option<String>,
    /// Judge as of this RFC 3339 instant instead of the period's cut-off.
    #[arg(long)]
    as_of: Option<String>,
    /// Read only the official figures, or the latest ([approval] report_history by default).
    #[arg(long, value_parser = ["official", "latest"])]
    history: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate settings and catalogue without starting anything.
    Check,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it once, alone on the last line.
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// Department code (required for --role department and --role approver).
        #[arg(long)]
        department: Option<String>,
        /// A name to recognise the token by.
        #[arg(long)]
        name: Option<String>,
        /// Days until the token expires; by default [tokens] in ktxh.toml (admin 90 days,
        /// department and viewer 365).
        #[arg(long, conflicts_with = "no_expiry")]
        expires_in_days: Option<i64>,
        /// A token that never expires; recorded as such in the audit log.
        #[arg(long)]
        no_expiry: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id; open websockets of the token close within
    /// live.token_recheck_seconds.
    Revoke {
        id: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the audit log's hash chain; a broken chain fails, naming its first broken row.
    Verify,
    /// Print the newest audit rows, one JSON object a line.
    List {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour codes only for a person at a terminal: piped into journald or a file they
        // would break every search for a field.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Parses the command line, runs the command and says how it ended; what `main` does.
pub async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_json);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", crate::outbound::causes(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen, demo } => {
            // Held until serve returns: SQLite serves one instance, and a second one on the
            // same file is refused before it touches anything.
            let _instance = if cli.database_url.starts_with("sqlite:") {
                crate::store::sqlite::InstanceLock::acquire(&cli.database_url)?
            } else {
                None
            };
            let built = App::build(Options {
                config_dir: cli.config,
                database_url: cli.database_url.clone(),
                listen,
                demo,
            })
            .await;
            let app = match built {
                Ok(app) => app,
                Err(error) => {
                    audit_refused_start(&cli.database_url, &error).await;
                    return Err(error);
                }
            };
            let shutdown = CancellationToken::new();
            app::cancel_on_signal(shutdown.clone());
            app.run(shutdown).await
        }
        Command::Migrate => {
            let (settings, _, catalogue) = app::load_config(&cli.config)?;
            let store = app::open_store(&cli.database_url, &settings, &catalogue).await?;
            say!("migrations applied ({})", store.backend().as_str());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let settings = Settings::load(&cli.config, std::env::vars())?;
            let feeds = FeedsConfig::load(&cli.config)?;
            let catalogue = load_catalogue(&cli.config)?;
            // What start-up checks of the collectors before it binds anything.
            FeedHealthRegistry::for_config(&feeds, &catalogue)?;
            // Settings::load has checked that the allow-list reads; as start-up does, every
            // pull and receiver URL is checked against it.
            let outbound = std::sync::Arc::new(settings.outbound.policy().map_err(|problems| {
                let (key, message) = problems.into_iter().next().unwrap_or_default();
                anyhow::anyhow!("config/ktxh.toml: {key}: {message}")
            })?);
            let refused = feeds.outbound_problems(&outbound);
            for (key, message) in &refused {
                eprintln!("config/feeds.toml: {key}: {message}");
            }
            if !refused.is_empty() {
                anyhow::bail!(
                    "{} pull URL(s) refused by the [outbound] allow-list",
                    refused.len()
                );
            }
            let alerting = AlertingConfig::load(&cli.config)?;
            let receivers =
                Receivers::build(&alerting.receiver, &outbound).context("config/alerting.toml")?;
            let mut ingest = settings.ingest.catalogue_problems(&catalogue);
            ingest.extend(settings.approval.catalogue_problems(&catalogue));
            for (key, message) in &ingest {
                eprintln!("config/ktxh.toml: {key}: {message}");
            }
            if !ingest.is_empty() {
                anyhow::bail!("{} problem(s) in [ingest] and [approval]", ingest.len());
            }
            let mapping = feeds.catalogue_problems(&catalogue);
            for (key, message) in &mapping {
                eprintln!("config/feeds.toml: {key}: {message}");
            }
            if !mapping.is_empty() {
                anyhow::bail!("{} problem(s) in the feed mappings", mapping.len());
            }
            let problems =
                crate::report::schedule::problems(&alerting.report, &receivers, &catalogue);
            if !problems.is_empty() {
                for (key, message) in &problems {
                    eprintln!("config/alerting.toml: {key}: {message}");
                }
                anyhow::bail!("{} problem(s) in the report schedules", problems.len());
            }
            say!(
                "configuration in {} is valid: {} groups, {} indicators, {} units, {} departments, {} targets, {} collectors, {} alert receivers; zone {}",
                cli.config.display(),
                catalogue.groups.len(),
                catalogue.indicators.len(),
                catalogue.units.len(),
                catalogue.departments.len(),
                catalogue.targets.len(),
                feeds.pull.len() + feeds.mqtt.len() + feeds.nats.len(),
                alerting.receiver.len(),
                settings.city.timezone,
            );
            Ok(())
        }
        Command::Token { command } => token_command(&cli.config, &cli.database_url, command).await,
        Command::Audit { command } => audit_command(&cli.config, &cli.database_url, command).await,
        Command::Import(args) => import_command(&cli.config, &cli.database_url, args).await,
        Command::Report(args) => report_command(&cli.config, &cli.database_url, args).await,
        Command::Backup { output } => {
            let backup = crate::store::backup::backup(&cli.database_url, &output).await?;
            say!(
                "backed up the {} database to {} ({} bytes)",
                backup.backend.as_str(),
                backup.path.display(),
                backup.bytes
            );
            say!("{}", backup.restore_hint());
            Ok(())
        }
    }
}

async fn import_command(
    config: &std::path::Path,
    url: &str,
    args: ImportArgs,
) -> anyhow::Result<()> {
    let format = match Format::from_name(&args.format) {
        Some(Format::Csv(_)) if args.decimal_comma => Format::Csv(Decimal::Comma),
        Some(Format::Json(_)) if args.decimal_comma => Format::Json(Decimal::Comma),
        Some(Format::Line(_)) => Format::Line(
            Precision::parse_v1(&args.precision)
                .ok_or_else(|| anyhow::anyhow!("unknown precision `{}`", args.precision))?,
        ),
        Some(format) => format,
        None => anyhow::bail!("unknown format `{}`", args.format),
    };
    let department = args
        .department
        .as_deref()
        .map(Code::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--department: {e}"))?;
    let options = ImportOptions {
        file: args.file,
        format,
        department,
        dry_run: args.dry_run,
        restart: args.restart,
        batch_rows: usize::try_from(args.batch_rows).unwrap_or(import::DEFAULT_BATCH_ROWS),
        reported_at: args.reported_at.unwrap_or_default(),
        actor: cli_actor(),
    };
    let (settings, feeds, catalogue) = app::load_config(config)?;
    // A dry run needs no database at all.
    let store = if options.dry_run {
        None
    } else {
        Some(app::open_store(url, &settings, &catalogue).await?)
    };
    let shutdown = CancellationToken::new();
    app::cancel_on_signal(shutdown.clone());
    let summary = import::run(
        &options,
        &settings,
        &feeds.mappings,
        Arc::new(catalogue),
        store,
        shutdown,
    )
    .await?;
    print!("{summary}");
    import::verdict(&summary)?;
    Ok(())
}

async fn report_command(
    config: &std::path::Path,
    url: &str,
    args: ReportArgs,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::sync::Arc;

    use crate::domain::Period;
    use crate::report::{Lang, ReportFormat, ReportRequest, Sources};
    use crate::rules::engine::Engine;

    let period = Period::parse(&args.period).map_err(anyhow::Error::msg)?;
    let format = ReportFormat::parse(&args.format).context("unknown format")?;
    {
        use std::io::IsTerminal as _;
        // A workbook's bytes on a terminal are noise, and can upset the terminal itself.
        anyhow::ensure!(
            format != ReportFormat::Xlsx
                || args.output.is_some()
                || !std::io::stdout().is_terminal(),
            "an XLSX workbook is binary: give --output FILE, or redirect standard output"
        );
    }
    let lang = Lang::parse(&args.lang).context("unknown language")?;
    let (settings, _, catalogue) = app::load_config(config)?;
    let as_of =
        crate::http::ApiError::as_of(args.as_of.as_deref(), settings.zone()).map_err(|_| {
            anyhow::anyhow!("--as-of: use an RFC 3339 instant or a period such as 2026-09-30")
        })?;
    let store = app::open_store(url, &settings, &catalogue).await?;
    let catalogue = Arc::new(catalogue);
    let now = Utc::now();
    let engine = Engine::load(
        catalogue.clone(),
        &store,
        settings.zone(),
        settings.release_calendar.clone(),
        settings.rules.hysteresis(),
        settings.rules.evaluation_interval(),
        now,
    )
    .await?
    .with_rollup_difference(settings.rules.rollup_difference);
    let sources = Sources {
        catalogue: &catalogue,
        engine: &engine,
        store: &store,
        calendar: &settings.release_calendar,
        zone: settings.zone(),
        city_vi: &settings.city.name_vi,
        city_en: &settings.city.name_en,
    };
    let request = ReportRequest {
        period,
        unit: args.unit,
        as_of,
        history: match args.history.as_deref() {
            Some(raw) => History::parse(raw).context("--history is official or latest")?,
            None => settings.approval.report_history,
        },
    };
    let report = sources.build(&request, lang, now).await?;
    let body = report.render(format, settings.zone())?;
    match args.output {
        Some(path) => {
            std::fs::write(&path, &body)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "{}: {}/{} targets met, cut-off {}",
                path.display(),
                report.tally.met,
                report.tally.total,
                report.cutoff.to_rfc3339()
            );
        }
        None => std::io::stdout().write_all(&body)?,
    }
    Ok(())
}

async fn token_command(
    config: &std::path::Path,
    url: &str,
    command: TokenCommand,
) -> anyhow::Result<()> {
    let (settings, _, catalogue) = app::load_config(config)?;
    let store = app::open_store(url, &settings, &catalogue).await?;
    match command {
        TokenCommand::Create {
            role,
            department,
            name,
            expires_in_days,
            no_expiry,
        } => {
            let department = match (role, department) {
                (role, Some(code)) if role.has_department() => {
                    let code = Code::parse(&code).map_err(anyhow::Error::msg)?;
                    catalogue.department(code.as_str()).with_context(|| {
                        format!(
                            "unknown department `{code}`; see config/catalogue/departments.toml"
                        )
                    })?;
                    Some(code.to_string())
                }
                (role, None) if role.has_department() => {
                    anyhow::bail!("--role {} needs --department CODE", role.as_str())
                }
                (_, Some(_)) => {
                    anyhow::bail!("--department is only for --role department or approver")
                }
                (_, None) => None,
            };
            let name = match name.map(|n| n.trim().to_owned()) {
                Some(name) if name.is_empty() => {
                    anyhow::bail!("--name must not be empty: leave it out for a generated one")
                }
                name => name,
            };
            if let Some(days) = expires_in_days {
                // Ten years at most: a longer lifetime is --no-expiry under another name,
                // without its audit note.
                anyhow::ensure!(
                    crate::config::TOKEN_LIFETIME_DAYS.contains(&days),
                    "--expires-in-days must be between 1 and 3660; a token that never expires \
                     is --no-expiry"
                );
            }
            let minted = auth::mint();
            let now = Utc::now();
            let lifetime = match (no_expiry, expires_in_days) {
                (true, _) => None,
                (false, Some(days)) => Some(days),
                (false, None) => Some(settings.tokens.expiry_days(role)),
            };
            let record = TokenRecord {
                id: minted.id.clone(),
                name: name.unwrap_or_else(|| format!("{}-{}", role.as_str(), &minted.id[..6])),
                role,
                department,
                digest: minted.digest.clone(),
                created_at: now,
                expires_at: lifetime.map(|days| now + Duration::days(days)),
                revoked_at: None,
            };
            let mut event = AuditEvent::new(now, cli_actor(), "token.create", record.id.clone());
            event.after = serde_json::to_value(&record).ok();
            if no_expiry {
                event.reason = Some("created without expiry (--no-expiry)".into());
            }
            store.create_token(&record, &event).await?;
            say!(
                "created {} token `{}` (id {})",
                role.as_str(),
                record.name,
                record.id
            );
            match record.expires_at {
                Some(expires) => say!("expires {}", expires.to_rfc3339()),
                None => say!("never expires (--no-expiry): revoke it when no longer needed"),
            }
            say!("store it now: it is not shown again");
            say!("{}", minted.plain);
            Ok(())
        }
        TokenCommand::List => {
            let now = Utc::now();
            say!(
                "{:<18} {:<10} {:<14} {:<8} {:<24} {:<24} NAME",
                "ID",
                "ROLE",
                "DEPARTMENT",
                "STATE",
                "CREATED",
                "EXPIRES"
            );
            for token in store.tokens().await? {
                let state = if token.revoked_at.is_some() {
                    "revoked"
                } else if token.is_usable(now) {
                    "active"
                } else {
                    "expired"
                };
                // Rotation is planned by the expiry (docs/security.md).
                let expires = token.expires_at.map_or_else(
                    || "never".to_owned(),
                    |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                );
                say!(
                    "{:<18} {:<10} {:<14} {:<8} {:<24} {:<24} {}",
                    token.id,
                    token.role.as_str(),
                    token.department.as_deref().unwrap_or("-"),
                    state,
                    token.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    expires,
                    token.name
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id, reason } => {
            let now = Utc::now();
            let Some(mut record) = store.token(&id).await? else {
                anyhow::bail!("no active token with id `{id}`")
            };
            let mut event = AuditEvent::new(now, cli_actor(), "token.revoke", id.clone());
            event.before = serde_json::to_value(&record).ok();
            record.revoked_at = Some(now);
            event.after = serde_json::to_value(&record).ok();
            event.reason = reason;
            if store.revoke_token_audited(&id, now, &event).await? {
                // Servers remember a token they found usable for a while (ARCHITECTURE §6).
                say!(
                    "revoked {id}; running servers refuse it within {} s",
                    settings.tokens.cache_seconds
                );
                Ok(())
            } else {
                anyhow::bail!("no active token with id `{id}`")
            }
        }
    }
}

/// Who acts from the command line, as the audit log names them: the account the process runs
/// as, by its user id, which `USER` (set by anyone, unset under `su` or in a container) is not.
/// `cli:alice(1000)`; where the system tells no id, `USER` as before.
fn cli_actor() -> String {
    match process_account() {
        Some((name, uid)) => format!("cli:{name}({uid})"),
        None => {
            let user = std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "unknown".into());
            format!("cli:{user}")
        }
    }
}

/// The real user id of this process and its account name (`/etc/passwd`), on Linux.
fn process_account() -> Option<(String, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid: u32 = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| "uid".to_owned());
    Some((name, uid))
}

/// Records a refused start in the audit log when the store can be reached: a service that
/// will not start is an operator's concern, and a tampered configuration may be why.
async fn audit_refused_start(url: &str, error: &anyhow::Error) {
    let zone = chrono_tz::Asia::Ho_Chi_Minh;
    let opened = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        crate::store::connect(url, zone),
    )
    .await;
    let Ok(Ok(store)) = opened else {
        tracing::warn!("the refused start is not audited: the store cannot be opened");
        return;
    };
    let mut event = AuditEvent::new(Utc::now(), cli_actor(), "config.check_failed", "ktxh serve");
    event.reason = Some(crate::outbound::causes(error.as_ref()));
    if let Err(error) = store.record_audit(&event).await {
        tracing::warn!(%error, "the refused start is not audited");
    }
}

async fn audit_command(
    config: &std::path::Path,
    url: &str,
    command: AuditCommand,
) -> anyhow::Result<()> {
    let (settings, _, _) = app::load_config(config)?;
    // Not open_store: reading the log must not seed targets, which would add to it.
    let store = crate::store::connect(url, settings.zone())
        .await
        .with_context(|| format!("cannot open the store at {}", crate::store::redact_url(url)))?;
    match command {
        AuditCommand::Verify => {
            const PAGE: i64 = 1000;
            let mut check = ChainCheck::default();
            loop {
                let page = store.audit_chain(check.last_id(), PAGE).await?;
                check.feed(&page)?;
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
            say!(
                "audit log intact: {} rows, last row {}, head {}",
                check.rows(),
                check.last_id(),
                hex::encode(check.head())
            );
            Ok(())
        }
        AuditCommand::List { limit } => {
            for entry in store.audit(limit).await? {
                say!("{}", serde_json::to_string(&entry)?);
            }
            Ok(())
        }
    }
}
