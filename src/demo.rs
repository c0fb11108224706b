//! Demo mode: a deterministic history of plausible figures, from the start of last year, for every
//! indicator and reporting unit, then simulated department feeds that push through the real HTTP ingest path
//! with department tokens, so a newcomer sees a living system.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Datelike, Duration as Span, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::auth::{self, Principal, Role, TokenRecord};
use crate::domain::approval::{ApprovalSelection, NewApproval};
use crate::domain::{
    ApprovalState, Catalogue, Direction, Indicator, Kind, OrgUnit, Period, Periodicity, Rollup,
    TargetValue,
};
use crate::http::AppState;
use crate::ingest::{RawRow, RawValue};
use crate::pipeline::Change;
use crate::store::{AuditEvent, ObservationQuery};

const DEMO_TOKEN_PREFIX: &str = "demo-";
const SEED_BATCH_ROWS: usize = 20_000;
/// Days of history of a daily indicator that every ward reports: a whole year of them would be
/// most of the demo's rows, and of its start time. A flow of which more is better reaches
/// back to the start of this year too, since its year judged on its last weeks would read as
/// far behind. A daily indicator reported at one unit has the whole window.
const WARD_DAILY_HISTORY_DAYS: i64 = 60;

/// How far back a daily indicator's history reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DailyHistory {
    Window,
    LastDays,
    ThisYear,
}

pub struct Demo {
    state: AppState,
    addr: SocketAddr,
}

/// A tiny, stable hash-based generator: the same inputs give the same history on every machine
/// and every version of the dependencies.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn hash_str(seed: u64, parts: &[&str]) -> u64 {
    let mut h = mix(seed);
    for part in parts {
        for byte in part.bytes() {
            h = mix(h ^ u64::from(byte));
        }
        h = mix(h ^ 0xff);
    }
    h
}

/// A uniform number in [-1, 1) from a hash.
fn unit_noise(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// The deterministic model behind the demo's numbers.
struct Model<'a> {
    seed: u64,
    zone: Tz,
    /// Each unit's share of the city for summed indicators.
    shares: HashMap<&'a str, f64>,
    targets: HashMap<(&'a str, i32), f64>,
    /// The targets set for one ward or commune: its figures follow its own target, not its
    /// share of the city's.
    unit_targets: HashMap<(&'a str, &'a str, i32), f64>,
}

impl<'a> Model<'a> {
    fn new(catalogue: &'a Catalogue, seed: u64, zone: Tz) -> Self {
        let children: Vec<&OrgUnit> = catalogue
            .units
            .iter()
            .filter(|u| u.parent.is_some())
            .collect();
        let total: f64 = children
            .iter()
            .map(|u| u.population.unwrap_or(1) as f64)
            .sum();
        let shares = children
            .iter()
            .map(|u| {
                (
                    u.code.as_str(),
                    u.population.unwrap_or(1) as f64 / total.max(1.0),
                )
            })
            .collect();
        let root = catalogue
            .root_unit()
            .map(|u| u.code.as_str())
            .unwrap_or_default();
        let value = |target: &TargetValue| match *target {
            TargetValue::Point { value } => value,
            TargetValue::Band { lo, hi } => (lo + hi) / 2.0,
        };
        let (city, units): (Vec<_>, Vec<_>) = catalogue
            .targets
            .iter()
            .partition(|t| t.unit.as_str() == root);
        let targets = city
            .iter()
            .map(|t| ((t.indicator.as_str(), t.year), value(&t.value)))
            .collect();
        let unit_targets = units
            .iter()
            .map(|t| {
                let key = (t.indicator.as_str(), t.unit.as_str(), t.year);
                (key, value(&t.value))
            })
            .collect();
        Self {
            seed,
            zone,
            shares,
            targets,
            unit_targets,
        }
    }

    /// The target `unit`'s figures follow, and the share of it the unit holds: its own, whole,
    /// or the city's, in the unit's share for a summed indicator.
    fn aim(&self, indicator: &Indicator, unit: &OrgUnit, year: i32) -> (f64, f64) {
        let own = [year, year - 1].iter().find_map(|y| {
            let key = (indicator.code.as_str(), unit.code.as_str(), *y);
            self.unit_targets.get(&key).copied()
        });
        match own {
            Some(target) => (target, 1.0),
            None => (
                self.target(indicator, year),
                self.unit_share(indicator, unit),
            ),
        }
    }

    fn target(&self, indicator: &Indicator, year: i32) -> f64 {
        let code = indicator.code.as_str();
        let years = [year, year + 1, year - 1, 2026, 2025];
        years
            .iter()
            .find_map(|y| self.targets.get(&(code, *y)).copied())
            .unwrap_or((indicator.range.0 + indicator.range.1) / 4.0)
    }

    /// How well the indicator is doing this year: around 1, a few clearly off.
    fn performance(&self, indicator: &Indicator, year: i32) -> f64 {
        let h = hash_str(
            self.seed,
            &[indicator.code.as_str(), &year.to_string(), "perf"],
        );
        1.0 + 0.07 * unit_noise(h)
    }

    fn periods_in_year_before(&self, period: &Period) -> Vec<Period> {
        let year = period.year(self.zone);
        match *period {
            Period::Month(_, m) => (1..m).map(|mm| Period::Month(year, mm)).collect(),
            Period::Quarter(_, q) => (1..q).map(|qq| Period::Quarter(year, qq)).collect(),
            Period::Day(d) => {
                let first = NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(d);
                first
                    .iter_days()
                    .take_while(|x| *x < d)
                    .map(Period::Day)
                    .collect()
            }
            Period::Year(_) | Period::Instant(_) => Vec::new(),
        }
    }

    /// One period's increment of a flow-like quantity, with a mild seasonal pattern.
    fn increment(&self, indicator: &Indicator, unit: &OrgUnit, period: &Period) -> f64 {
        let year = period.year(self.zone);
        let (target, share) = self.aim(indicator, unit, year);
        let per_period = target / f64::from(indicator.periodicity.periods_per_year());
        let month = period.start(self.zone).with_timezone(&self.zone).month() as f64;
        let season = 1.0 + 0.12 * ((month - 3.0) / 12.0 * std::f64::consts::TAU).sin();
        let noise = 1.0
            + 0.04
                * unit_noise(hash_str(
                    self.seed,
                    &[
                        indicator.code.as_str(),
                        unit.code.as_str(),
                        &period.to_string(),
                    ],
                ));
        per_period * self.performance(indicator, year) * season * noise * share
    }

    fn unit_share(&self, indicator: &Indicator, unit: &OrgUnit) -> f64 {
        match (unit.parent.is_some(), indicator.rollup) {
            (true, Rollup::Sum) => self.shares.get(unit.code.as_str()).copied().unwrap_or(0.0),
            _ => 1.0,
        }
    }

    /// The value a feed would report for `period`.
    fn value(&self, indicator: &Indicator, unit: &OrgUnit, period: &Period) -> f64 {
        let year = period.year(self.zone);
        let raw = match indicator.kind {
            Kind::Flow => self.increment(indicator, unit, period),
            Kind::Cumulative => {
                let earlier: f64 = self
                    .periods_in_year_before(period)
                    .iter()
                    .map(|p| self.increment(indicator, unit, p))
                    .sum();
                earlier + self.increment(indicator, unit, period)
            }
            Kind::Level | Kind::Growth | Kind::Average => {
                let (target, _) = self.aim(indicator, unit, year);
                let perf = self.performance(indicator, year);
                let toward = match indicator.direction {
                    Direction::HigherIsBetter => target * (1.0 + (perf - 1.0) * 0.6),
                    Direction::LowerIsBetter => target * (1.0 - (perf - 1.0) * 0.6),
                    Direction::Within => target * (1.0 + (perf - 1.0) * 0.3),
                };
                let unit_bias = if unit.parent.is_some() {
                    0.08 * unit_noise(hash_str(
                        self.seed,
                        &[indicator.code.as_str(), unit.code.as_str(), "bias"],
                    ))
                } else {
                    0.0
                };
                let noise = 0.02
                    * unit_noise(hash_str(
                        self.seed,
                        &[
                            indicator.code.as_str(),
                            unit.code.as_str(),
                            &period.to_string(),
                        ],
                    ));
                toward * (1.0 + unit_bias + noise)
            }
        };
        let (min, max) = indicator.range;
        as_sent(indicator, raw.clamp(min, max))
    }
}

/// A figure as a department writes it: a count whole, anything else to two decimals.
fn as_sent(indicator: &Indicator, value: f64) -> f64 {
    if indicator.whole {
        value.round()
    } else {
        (value * 100.0).round() / 100.0
    }
}

/// Complete periods of a periodicity within the demo's history window, oldest first. The window
/// reaches `months` back and on to the start of that year, so that every year shown is whole
/// (a year judged on half its months would read as missed).
fn history_periods(
    periodicity: Periodicity,
    now: DateTime<Utc>,
    months: u32,
    daily: DailyHistory,
    zone: Tz,
) -> Vec<Period> {
    let today = now.with_timezone(&zone).date_naive();
    let back = today
        .checked_sub_months(chrono::Months::new(months))
        .unwrap_or(today);
    let window_start = NaiveDate::from_ymd_opt(back.year(), 1, 1).unwrap_or(back);
    let complete =
        |p: &Period| p.end(zone) <= now && p.start(zone) >= local_start(window_start, zone);
    let mut periods = Vec::new();
    match periodicity {
        Periodicity::Daily => {
            let last_days = today - Span::days(WARD_DAILY_HISTORY_DAYS);
            let first = match daily {
                DailyHistory::Window => window_start,
                DailyHistory::LastDays => last_days,
                DailyHistory::ThisYear => NaiveDate::from_ymd_opt(today.year(), 1, 1)
                    .map_or(last_days, |start| start.min(last_days)),
            };
            periods.extend(
                first
                    .iter_days()
                    .take_while(|d| *d < today)
                    .map(Period::Day),
            );
        }
        Periodicity::Monthly => {
            for year in window_start.year()..=today.year() {
                periods.extend((1..=12).map(|m| Period::Month(year, m)).filter(complete));
            }
        }
        Periodicity::Quarterly => {
            for year in window_start.year()..=today.year() {
                periods.extend((1..=4).map(|q| Period::Quarter(year, q)).filter(complete));
            }
        }
        Periodicity::Yearly => {
            periods.extend((window_start.year()..today.year()).map(Period::Year));
        }
    }
    periods
}

fn local_start(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    Period::Day(date).start(zone)
}

fn raw_row(
    indicator: &Indicator,
    unit: &OrgUnit,
    period: &Period,
    value: f64,
    label: &str,
) -> RawRow {
    RawRow {
        indicator: Some(indicator.code.to_string()),
        unit: Some(unit.code.to_string()),
        period: Some(period.to_string()),
        ts: None,
        value: Some(RawValue::Number(value)),
        revision: Some(label.to_owned()),
        source: Some("demo".to_owned()),
        ..RawRow::default()
    }
}

impl Demo {
    pub fn new(state: AppState, addr: SocketAddr) -> Self {
        Self { state, addr }
    }

    /// Mints the demo tokens, seeds history when the store has none, and starts the feeds.
    pub async fn start(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = &self.state.store;
        let now = Utc::now();
        for token in store.tokens().await? {
            if token.name.starts_with(DEMO_TOKEN_PREFIX) && token.revoked_at.is_none() {
                store.revoke_token(&token.id, now).await?;
            }
        }
        let admin = self.mint("demo-admin", Role::Admin, None).await?;
        let viewer = self.mint("demo-viewer", Role::Viewer, None).await?;
        let mut department_tokens = HashMap::new();
        for department in &self.state.catalogue.departments {
            let name = format!("demo-{}", department.code.as_str().to_ascii_lowercase());
            let token = self
                .mint(&name, Role::Department, Some(department.code.to_string()))
                .await?;
            department_tokens.insert(department.code.to_string(), token);
        }

        self.seed(now).await?;

        // A closed stdout (piped into `head`, say) must not take the server down with it.
        let banner = format!(
            "KT-XH Live demo is running at http://{addr}\n  \
             operations room: http://{addr}/#token={viewer}\n  viewer token: {viewer}\n  admin token:  {admin}\n  \
             try: curl -H 'Authorization: Bearer {viewer}' http://{addr}/api/v1/groups\n",
            addr = self.addr
        );
        let mut stdout = std::io::stdout().lock();
        let _ = std::io::Write::write_all(&mut stdout, banner.as_bytes());
        let _ = std::io::Write::flush(&mut stdout);
        drop(stdout);

        let feeds = Feeds {
            state: self.state.clone(),
            addr: self.addr,
            tokens: department_tokens,
        };
        tokio::spawn(feeds.run(shutdown));
        Ok(())
    }

    async fn mint(
        &self,
        name: &str,
        role: Role,
        department: Option<String>,
    ) -> anyhow::Result<String> {
        let minted = auth::mint();
        self.state
            .store
            .insert_token(&TokenRecord {
                id: minted.id.clone(),
                name: name.to_owned(),
                role,
                department,
                digest: minted.digest.clone(),
                created_at: Utc::now(),
                expires_at: None,
                revoked_at: None,
            })
            .await?;
        Ok(minted.plain)
    }

    async fn seed(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        let catalogue = &self.state.catalogue;
        let zone = self.state.settings.zone();
        let Some(root) = catalogue.root_unit() else {
            return Ok(());
        };
        if let Some(first) = catalogue.indicators.first() {
            let existing = self
                .state
                .store
                .observations(&ObservationQuery {
                    indicator: first.code.to_string(),
                    unit: root.code.to_string(),
                    ..Default::default()
                })
                .await?;
            if !existing.is_empty() {
                tracing::info!("demo history already present");
                return Ok(());
            }
        }
        let model = Model::new(catalogue, self.state.settings.demo.seed, zone);
        let principal = Principal {
            token_id: "demo-seed".into(),
            name: "demo-seed".into(),
            role: Role::Admin,
            department: None,
        };
        let started = std::time::Instant::now();
        // Each period's figures became known the day before they were due, as a department that
        // keeps to the release calendar would publish them; nothing is known after `now`. They
        // are stored now, each row carrying when it became known, so that `as_of` reads and
        // past reports see what was known then.
        let city_calendar = &self.state.settings.release_calendar;
        let mut by_release: BTreeMap<DateTime<Utc>, Vec<RawRow>> = BTreeMap::new();
        let mut approvals = OfficialHistory::new(now);
        for indicator in &catalogue.indicators {
            let calendar = city_calendar.for_indicator(indicator);
            let by_wards = catalogue.reporting_units(indicator).nth(1).is_some();
            let more_is_better =
                indicator.kind == Kind::Flow && indicator.direction == Direction::HigherIsBetter;
            let daily = match (by_wards, more_is_better) {
                (false, _) => DailyHistory::Window,
                (true, false) => DailyHistory::LastDays,
                (true, true) => DailyHistory::ThisYear,
            };
            let periods = history_periods(
                indicator.periodicity,
                now,
                self.state.settings.demo.history_months,
                daily,
                zone,
            );
            for unit in catalogue.reporting_units(indicator) {
                for period in &periods {
                    let released = (calendar.due_at(period, zone) - Span::days(1))
                        .max(period.end(zone))
                        .min(now);
                    let mut row = raw_row(
                        indicator,
                        unit,
                        period,
                        model.value(indicator, unit, period),
                        "official",
                    );
                    row.reported_at = Some(released.to_rfc3339());
                    by_release.entry(released).or_default().push(row);
                    approvals.add(indicator, period, released, zone);
                }
            }
        }
        // Oldest knowledge first, in large batches: the history is one back-fill, audited as
        // such a few times rather than once per release day, and replayed once at its end.
        let hold = self.state.pipeline.hold_replays();
        let mut rows = by_release.into_values().flatten().peekable();
        let mut total = 0usize;
        while rows.peek().is_some() {
            let batch: Vec<RawRow> = rows.by_ref().take(SEED_BATCH_ROWS).collect();
            total += self.push_seed(&principal, batch, now).await?;
        }
        tracing::debug!(
            rows = total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "demo history written"
        );
        let official = self.approve_seed(approvals).await?;
        tracing::debug!(
            official,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "demo history approved"
        );
        drop(hold);
        self.state.pipeline.apply(Change::Tick(Utc::now())).await;
        tracing::info!(
            rows = total,
            official,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "demo history seeded"
        );
        Ok(())
    }

    /// The statistics office's approvals of the seeded history, each at the instant the figures
    /// were published, so that official-only reports (the default, ARCHITECTURE §12) of past
    /// periods read figures and the live feeds' new ones stay preliminary.
    async fn approve_seed(&self, approvals: OfficialHistory) -> anyhow::Result<usize> {
        let mut moved = 0;
        // The monthly, quarterly and yearly figures in one approval, each official from its
        // release, as the statistics office marks a published history (`as_published`); the
        // daily ones a closed month at a time.
        let now = approvals.now;
        let published = approvals
            .published
            .map(|batch| (now, Some(now), batch))
            .into_iter();
        let months = approvals
            .batches
            .into_iter()
            .map(|(approved_at, batch)| (approved_at, None, batch));
        for (approved_at, published_before, batch) in published.chain(months) {
            let approval = NewApproval {
                selection: ApprovalSelection::Latest {
                    indicators: batch.indicators.into_iter().collect(),
                    unit: None,
                    from: batch.from,
                    to: batch.to,
                },
                state: ApprovalState::Official,
                approved_at,
                approved_by: "demo-seed".into(),
                note: Some("demo: published figures".into()),
                published_before,
            };
            let event = AuditEvent::new(
                approved_at,
                "demo-seed",
                "observations.approve",
                format!(
                    "demo/*/{}..{}",
                    batch.from.to_rfc3339(),
                    batch.to.to_rfc3339()
                ),
            );
            moved += self
                .state
                .store
                .approve(&approval, &event)
                .await?
                .approved
                .len();
        }
        // No screen is open yet: the screens' approval states are read once, after all.
        let zone = self.state.settings.zone();
        self.state
            .publisher
            .approvals()
            .reload(&self.state.store, zone, Utc::now())
            .await?;
        Ok(moved)
    }

    async fn push_seed(
        &self,
        principal: &Principal,
        rows: Vec<RawRow>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let receipt = self
            .state
            .ingestor
            .ingest(principal, "demo", rows, None, now)
            .await?;
        if let Some(first) = receipt.rejected.first() {
            tracing::warn!(rejected = receipt.rejected.len(), example = %first.message, "demo rows rejected");
        }
        Ok(receipt.accepted)
    }
}

/// The seeded periods grouped into the approvals that make them official: every period of a
/// month or longer at once, each as of its release; daily figures a month at a time once the
/// month's last day is published, and not before, as a statistics office approves a closed
/// month.
struct OfficialHistory {
    /// The instant of the seed: periods released then are official from then.
    now: DateTime<Utc>,
    published: Option<OfficialBatch>,
    /// Closed months of daily figures, by the release of their last day.
    batches: BTreeMap<DateTime<Utc>, OfficialBatch>,
    /// A daily month's periods until its last day's release is known.
    months: BTreeMap<(i32, u32), OfficialBatch>,
}

struct OfficialBatch {
    indicators: BTreeSet<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl OfficialBatch {
    fn add(&mut self, indicator: &Indicator, from: DateTime<Utc>, to: DateTime<Utc>) {
        self.indicators.insert(indicator.code.to_string());
        self.widen(from, to);
    }

    fn widen(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        self.from = self.from.min(from);
        self.to = self.to.max(to);
    }

    /// Takes in `other`'s indicators and span.
    fn merge(&mut self, other: OfficialBatch) {
        self.indicators.extend(other.indicators);
        self.widen(other.from, other.to);
    }
}

impl OfficialHistory {
    fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            published: None,
            batches: BTreeMap::new(),
            months: BTreeMap::new(),
        }
    }

    fn add(&mut self, indicator: &Indicator, period: &Period, released: DateTime<Utc>, zone: Tz) {
        let (from, to) = (period.start(zone), period.end(zone));
        let empty = || OfficialBatch {
            indicators: BTreeSet::new(),
            from,
            to,
        };
        let Period::Day(day) = period else {
            self.published
                .get_or_insert_with(empty)
                .add(indicator, from, to);
            return;
        };
        // A month's daily figures wait for its last day, which is published last.
        let month = (day.year(), day.month());
        self.months
            .entry(month)
            .or_insert_with(empty)
            .add(indicator, from, to);
        let last_day = day
            .succ_opt()
            .is_none_or(|next| next.month() != day.month());
        if last_day && released < self.now {
            if let Some(batch) = self.months.remove(&month) {
                match self.batches.entry(released) {
                    Entry::Occupied(mut slot) => slot.get_mut().merge(batch),
                    Entry::Vacant(slot) => {
                        slot.insert(batch);
                    }
                }
            }
        }
    }
}

/// Simulated department systems pushing their current figures over HTTP.
struct Feeds {
    state: AppState,
    addr: SocketAddr,
    tokens: HashMap<String, String>,
}

impl Feeds {
    async fn run(self, shutdown: CancellationToken) {
        let client = reqwest::Client::new();
        let url = format!("http://{}/api/v1/observations", self.addr);
        let interval = Duration::from_millis(self.state.settings.demo.feed_interval_ms);
        let catalogue = &self.state.catalogue;
        let zone = self.state.settings.zone();
        let model = Model::new(catalogue, self.state.settings.demo.seed, zone);
        let mut tick: u64 = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            tick += 1;
            let count = catalogue.indicators.len() as u64;
            if count == 0 {
                return;
            }
            let indicator = &catalogue.indicators[(mix(tick) % count) as usize];
            let Some(token) = self.tokens.get(indicator.department.as_str()) else {
                continue;
            };
            let now = Utc::now();
            // A feed sends the last period that has ended, as departments do, and revises it:
            // a figure of the period in progress would be judged as the whole period. A
            // yearly figure's last period is a year already closed and judged, so those wait.
            if indicator.periodicity == Periodicity::Yearly {
                continue;
            }
            let Some(period) =
                Period::containing(indicator.periodicity, now.with_timezone(&zone).date_naive())
                    .previous()
            else {
                continue;
            };
            // Each push revises the figure a little.
            let drift = 1.0 + 0.01 * unit_noise(mix(tick ^ 0x5eed));
            let rows: Vec<_> = catalogue
                .reporting_units(indicator)
                .take(12)
                .map(|unit| {
                    let value = (model.value(indicator, unit, &period) * drift).clamp(indicator.range.0, indicator.range.1);
                    json!({
                        "indicator": indicator.code, "unit": unit.code, "period": period.to_string(),
                        "value": as_sent(indicator, value), "revision": "preliminary", "source": "demo-feed",
                    })
                })
                .collect();
            let sent = client
                .post(&url)
                .bearer_auth(token)
                .json(&json!({ "observations": rows }))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(indicator = %indicator.code, rows = rows.len(), "demo feed pushed");
                }
                Ok(response) => {
                    tracing::warn!(status = %response.status(), indicator = %indicator.code, "demo feed refused")
                }
                Err(error) => tracing::warn!(%error, "demo feed failed"),
            }
        }
    }
}
