//! The bodies the tasks API accepts and their checks: every refusal is a problem naming its
//! field by JSON pointer.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use utoipa::ToSchema;

use super::super::{body, ApiError};
use crate::config::directives::derived_group;
use crate::domain::period::YEARS;
use crate::domain::task::{Directive, DirectiveKind, RecordedStatus, TaskDef};
use crate::domain::{Catalogue, Code};

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 500;
/// Longest progress note, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;
/// Most co-operating units or linked indicators of one task.
pub const MAX_LINKS: usize = 50;

/// The directive a task comes from: its number, and the rest when it is not stored yet.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectiveBody {
    #[schema(required = true, example = "02/CT-UBND")]
    pub number: Option<String>,
    /// `YYYY-MM-DD`; required for a directive not stored yet.
    #[schema(example = "2025-10-09")]
    pub date: Option<String>,
    #[schema(example = "UBND TP.HCM")]
    pub issuer: Option<String>,
    /// `ket_luan`, `chi_thi`, `nghi_quyet`, `ke_hoach`, `quyet_dinh`, `cong_van` or `thong_bao`.
    #[schema(example = "chi_thi")]
    pub kind: Option<String>,
    pub title_vi: Option<String>,
    pub title_en: Option<String>,
    pub source: Option<String>,
}

/// A task as created (`POST`, with `code`) or redefined (`PUT`, `code` from the path).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "code": "CT02_2025_EXPORT_FAIR",
    "title_vi": "Tổ chức hội chợ xúc tiến xuất khẩu",
    "title_en": "Hold an export promotion fair",
    "directive": {"number": "02/CT-UBND"},
    "owner": "CUSTOMS",
    "cooperating": ["INDUSTRY_TRADE"],
    "due": "2026-12-31",
    "indicators": ["EXPORT_TURNOVER"]
}))]
pub struct TaskBody {
    /// Required on `POST`; on `PUT` it may only repeat the path's.
    #[schema(example = "CT02_2025_EXPORT_FAIR")]
    pub code: Option<String>,
    #[schema(required = true)]
    pub title_vi: Option<String>,
    #[schema(required = true)]
    pub title_en: Option<String>,
    #[schema(required = true)]
    pub directive: Option<DirectiveBody>,
    /// The owning department's code.
    #[schema(required = true, example = "CUSTOMS")]
    pub owner: Option<String>,
    /// Co-operating departments or units.
    #[serde(default)]
    pub cooperating: Vec<String>,
    /// `YYYY-MM-DD`.
    #[schema(required = true, example = "2026-12-31")]
    pub due: Option<String>,
    #[serde(default)]
    pub indicators: Vec<String>,
    /// The sector group; the first linked indicator's (or the owner's) when absent.
    pub group: Option<String>,
}

/// A progress note of the owning department.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "note": "Đã làm việc với 12 doanh nghiệp xuất khẩu lớn; 3 vướng mắc đã được tháo gỡ.",
    "percent": 80,
    "status": "in_progress"
}))]
pub struct ProgressBody {
    /// What was done (1 to 2000 characters).
    #[schema(required = true)]
    pub note: Option<String>,
    /// How far the task is, 0 to 100; 100 when `status` is `done` and it is absent.
    pub percent: Option<i64>,
    /// `in_progress` or `done`; absent leaves the status as it is.
    pub status: Option<String>,
    /// When it was done (`YYYY-MM-DD`, not in the future); only with `status: "done"`, today
    /// when absent.
    pub completed_on: Option<String>,
}

pub fn date(raw: &str, pointer: &str) -> Result<NaiveDate, ApiError> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid(pointer, "a date as YYYY-MM-DD, e.g. 2026-12-31"))?;
    if !YEARS.contains(&date.year()) {
        return Err(ApiError::invalid(
            pointer,
            format!("a date between {} and {}", YEARS.start(), YEARS.end()),
        ));
    }
    Ok(date)
}

pub fn required<'a>(value: Option<&'a String>, pointer: &str) -> Result<&'a str, ApiError> {
    value
        .map(String::as_str)
        .ok_or_else(|| ApiError::invalid(pointer, "required"))
}

/// Trimmed free text of 1 to `max` characters that every backend can store.
pub fn text(raw: &str, max: usize, pointer: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(ApiError::invalid(
            pointer,
            format!("required, 1 to {max} characters"),
        ));
    }
    body::storable(trimmed, pointer)?;
    Ok(trimmed.to_owned())
}

/// [`text`] of one line: a title, a number, a name ([`body::one_line`]).
pub fn line(raw: &str, max: usize, pointer: &str) -> Result<String, ApiError> {
    let text = text(raw, max, pointer)?;
    body::one_line(&text, pointer)?;
    Ok(text)
}

/// Where a directive is published: a web address (`https://…`) or a citation in words. An
/// address of another kind (`javascript:`, `data:`) is no place a reader can go, and a screen
/// would make a link of it.
fn source(raw: &str, pointer: &str) -> Result<String, ApiError> {
    let source = line(raw, 1000, pointer)?;
    let lower = source.to_ascii_lowercase();
    let scheme = ["javascript:", "data:", "vbscript:", "file:"]
        .into_iter()
        .find(|scheme| lower.starts_with(scheme));
    match scheme {
        Some(scheme) => Err(ApiError::invalid(
            pointer,
            format!("a web address (https://…) or a citation, not a `{scheme}` address"),
        )),
        None => Ok(source),
    }
}

fn code(raw: &str, pointer: &str) -> Result<Code, ApiError> {
    Code::parse(raw.trim()).map_err(|e| ApiError::invalid(pointer, e))
}

/// The directive named by `body`: the stored one (any other field given must agree with it),
/// or a new one from the fields given.
pub fn directive(
    body: Option<&DirectiveBody>,
    stored: &[Directive],
) -> Result<Directive, ApiError> {
    let body = body.ok_or_else(|| ApiError::invalid("/directive", "required"))?;
    let number = line(
        required(body.number.as_ref(), "/directive/number")?,
        100,
        "/directive/number",
    )?;
    if let Some(known) = stored.iter().find(|d| d.number == number) {
        let differs = |given: &Option<String>, known: &str| {
            given.as_deref().is_some_and(|g| g.trim() != known)
        };
        let checks = [
            ("date", differs(&body.date, &known.date.to_string())),
            ("issuer", differs(&body.issuer, &known.issuer)),
            ("kind", differs(&body.kind, known.kind.as_str())),
            ("title_vi", differs(&body.title_vi, &known.title_vi)),
            ("title_en", differs(&body.title_en, &known.title_en)),
        ];
        if let Some((field, _)) = checks.iter().find(|(_, differs)| *differs) {
            return Err(ApiError::invalid(
                format!("/directive/{field}"),
                format!("differs from the stored directive `{number}`; give its number alone"),
            ));
        }
        return Ok(known.clone());
    }
    let kind_raw = required(body.kind.as_ref(), "/directive/kind")?;
    let kind = DirectiveKind::parse(kind_raw.trim()).ok_or_else(|| {
        let known: Vec<&str> = DirectiveKind::ALL.iter().map(|k| k.as_str()).collect();
        ApiError::invalid("/directive/kind", format!("one of {}", known.join(", ")))
    })?;
    let source = body
        .source
        .as_deref()
        .map(|s| source(s, "/directive/source"))
        .transpose()?;
    Ok(Directive {
        illustrative: source.is_none(),
        date: date(
            required(body.date.as_ref(), "/directive/date")?,
            "/directive/date",
        )?,
        issuer: line(
            required(body.issuer.as_ref(), "/directive/issuer")?,
            200,
            "/directive/issuer",
        )?,
        kind,
        title_vi: line(
            required(body.title_vi.as_ref(), "/directive/title_vi")?,
            MAX_TITLE_CHARS,
            "/directive/title_vi",
        )?,
        title_en: line(
            required(body.title_en.as_ref(), "/directive/title_en")?,
            MAX_TITLE_CHARS,
            "/directive/title_en",
        )?,
        number,
        source,
    })
}

/// The codes of `list` (the body's `/{name}`), each passing `check` and each once; a refusal
/// points at the entry.
fn distinct_codes(
    list: &[String],
    name: &str,
    check: impl Fn(&Code) -> Result<(), String>,
) -> Result<Vec<Code>, ApiError> {
    let mut codes: Vec<Code> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let pointer = format!("/{name}/{i}");
        let item = code(raw, &pointer)?;
        if let Err(message) = check(&item) {
            return Err(ApiError::invalid(pointer, message));
        }
        if codes.contains(&item) {
            return Err(ApiError::invalid(
                pointer,
                format!("`{item}` is listed twice"),
            ));
        }
        codes.push(item);
    }
    Ok(codes)
}

/// The definition `body` gives the task `code`, checked against the catalogue.
pub fn definition(
    code_value: Code,
    body: &TaskBody,
    directive: &Directive,
    catalogue: &Catalogue,
) -> Result<TaskDef, ApiError> {
    let owner = code(required(body.owner.as_ref(), "/owner")?, "/owner")?;
    if catalogue.department(owner.as_str()).is_none() {
        return Err(ApiError::invalid(
            "/owner",
            format!("unknown department `{owner}`"),
        ));
    }
    for (list, name) in [
        (&body.cooperating, "cooperating"),
        (&body.indicators, "indicators"),
    ] {
        if list.len() > MAX_LINKS {
            return Err(ApiError::invalid(
                format!("/{name}"),
                format!("at most {MAX_LINKS}"),
            ));
        }
    }
    let cooperating = distinct_codes(&body.cooperating, "cooperating", |unit| {
        if catalogue.department(unit.as_str()).is_none() && catalogue.unit(unit.as_str()).is_none()
        {
            Err(format!("`{unit}` is neither a department nor a unit"))
        } else if *unit == owner {
            Err(format!(
                "`{unit}` owns the task; co-operating units are the others"
            ))
        } else {
            Ok(())
        }
    })?;
    let indicators = distinct_codes(&body.indicators, "indicators", |indicator| match catalogue
        .indicator(indicator.as_str())
    {
        Some(_) => Ok(()),
        None => Err(format!("unknown indicator `{indicator}`")),
    })?;
    let group = match body.group.as_deref() {
        Some(raw) => {
            let group = code(raw, "/group")?;
            if catalogue.group(group.as_str()).is_none() {
                return Err(ApiError::invalid(
                    "/group",
                    format!("unknown group `{group}`"),
                ));
            }
            group
        }
        None => derived_group(catalogue, &owner, &indicators).ok_or_else(|| {
            ApiError::invalid("/group", "required: no linked indicator to take it from")
        })?,
    };
    let due = date(required(body.due.as_ref(), "/due")?, "/due")?;
    if due < directive.date {
        return Err(ApiError::invalid(
            "/due",
            format!("before the directive was issued ({})", directive.date),
        ));
    }
    Ok(TaskDef {
        code: code_value,
        title_vi: line(
            required(body.title_vi.as_ref(), "/title_vi")?,
            MAX_TITLE_CHARS,
            "/title_vi",
        )?,
        title_en: line(
            required(body.title_en.as_ref(), "/title_en")?,
            MAX_TITLE_CHARS,
            "/title_en",
        )?,
        directive: directive.number.clone(),
        owner,
        cooperating,
        group,
        due,
        indicators,
    })
}

/// The task's code from a `POST` body.
pub fn new_code(body: &TaskBody) -> Result<Code, ApiError> {
    code(required(body.code.as_ref(), "/code")?, "/code")
}

/// What a progress note records: the note, its percent, and the status and completion date it
/// sets (`None` leaves them).
pub struct Progress {
    pub note: String,
    pub percent: Option<u8>,
    pub status: Option<(RecordedStatus, Option<NaiveDate>)>,
}

/// How far back a caller may date a task's completion: `None` for any date (admins), or the
/// number of days before today a department may go back (`[ingest] reported_at_backdate_days`,
/// as for a figure's `reported_at`), so that a task long overdue cannot be recorded as done in
/// time after the fact.
pub type BackdateDays = Option<i64>;

pub fn progress(
    body: &ProgressBody,
    directive: &Directive,
    today: NaiveDate,
    backdate: BackdateDays,
) -> Result<Progress, ApiError> {
    let note = text(
        required(body.note.as_ref(), "/note")?,
        MAX_NOTE_CHARS,
        "/note",
    )?;
    let percent = body
        .percent
        .map(|p| {
            u8::try_from(p)
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| ApiError::invalid("/percent", "0 to 100"))
        })
        .transpose()?;
    let status = match body.status.as_deref() {
        None => None,
        Some("in_progress") => Some(RecordedStatus::InProgress),
        Some("done") => Some(RecordedStatus::Done),
        Some(_) => {
            return Err(ApiError::invalid(
                "/status",
                "`in_progress` or `done` (overdue and done late are judged, not recorded)",
            ))
        }
    };
    let completed_on = body
        .completed_on
        .as_deref()
        .map(|raw| date(raw, "/completed_on"))
        .transpose()?;
    if completed_on.is_some() && status != Some(RecordedStatus::Done) {
        return Err(ApiError::invalid(
            "/completed_on",
            "only with `status: \"done\"`",
        ));
    }
    if completed_on.is_some_and(|on| on > today) {
        return Err(ApiError::invalid(
            "/completed_on",
            "a task cannot be done in the future",
        ));
    }
    if let (Some(on), Some(days)) = (completed_on, backdate) {
        if on < today - chrono::Duration::days(days) {
            return Err(ApiError::invalid(
                "/completed_on",
                format!(
                    "a department may date a task done at most {days} days back; \
                     an admin may record an earlier date"
                ),
            ));
        }
    }
    if completed_on.is_some_and(|on| on < directive.date) {
        return Err(ApiError::invalid(
            "/completed_on",
            format!(
                "a task cannot be done before {} assigned it on {}",
                directive.number, directive.date
            ),
        ));
    }
    if status == Some(RecordedStatus::Done) && percent.is_some_and(|p| p < 100) {
        return Err(ApiError::invalid(
            "/percent",
            "a task done is done in full: send 100, or leave `percent` out",
        ));
    }
    let status = status.map(|s| match s {
        RecordedStatus::Done => (s, Some(completed_on.unwrap_or(today))),
        _ => (s, None),
    });
    let percent = match (percent, status) {
        (None, Some((RecordedStatus::Done, _))) => Some(100),
        (percent, _) => percent,
    };
    Ok(Progress {
        note,
        percent,
        status,
    })
}
