//! The words of every message, in Vietnamese and English, kept in one file so a translator
//! edits one place. Receivers (email, Telegram, Alertmanager annotations) assemble these pieces;
//! none of them spells a word of its own. The figures of a target's alert (the short form's
//! and the email's working) are worded in `working.rs`, with the same formatter.
//!
//! Labels (department, unit, indicator) are shown by the names a [`Directory`] gives them, or
//! as the codes the alert carries where none is at hand.

use chrono::{DateTime, Utc};

use super::directory::Directory;
use crate::alerts::message::{AlertMessage, Notification};
use crate::domain::alert::{AlertState, Severity};
use crate::domain::number::{self, Notation};

/// The language of a message's human-readable text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// Vietnamese, the default.
    #[default]
    Vi,
    En,
}

impl Language {
    /// Reads `vi` or `en` (any case, surrounding spaces ignored).
    pub fn parse(code: &str) -> Option<Self> {
        match code.trim().to_ascii_lowercase().as_str() {
            "vi" => Some(Self::Vi),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vi => "vi",
            Self::En => "en",
        }
    }

    /// The language a notification is written in: the one it names when we speak it (the
    /// router records it in the outbox row), else the receiver's configured language.
    pub fn for_notification(notification_language: &str, receiver_language: Self) -> Self {
        Self::parse(notification_language).unwrap_or(receiver_language)
    }
}

/// Field names and fixed phrases used around the alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term {
    Severity,
    Indicator,
    Unit,
    Since,
    Ended,
    Link,
    OpenLink,
    NotificationId,
    Group,
    Footer,
}

pub fn term(language: Language, term: Term) -> &'static str {
    use Language::{En, Vi};
    match (term, language) {
        (Term::Severity, Vi) => "Mức độ",
        (Term::Severity, En) => "Severity",
        (Term::Indicator, Vi) => "Chỉ tiêu",
        (Term::Indicator, En) => "Indicator",
        (Term::Unit, Vi) => "Đơn vị",
        (Term::Unit, En) => "Unit",
        (Term::Since, Vi) => "Từ lúc",
        (Term::Since, En) => "Since",
        (Term::Ended, Vi) => "Kết thúc lúc",
        (Term::Ended, En) => "Ended",
        (Term::Link, Vi) => "Liên kết",
        (Term::Link, En) => "Link",
        (Term::OpenLink, Vi) => "Xem chi tiết",
        (Term::OpenLink, En) => "Open",
        (Term::NotificationId, Vi) => "Mã thông báo",
        (Term::NotificationId, En) => "Notification id",
        (Term::Group, Vi) => "Nhóm",
        (Term::Group, En) => "Group",
        (Term::Footer, Vi) => "Thư tự động từ KT-XH Live, vui lòng không trả lời thư này.",
        (Term::Footer, En) => "Sent automatically by KT-XH Live; please do not reply.",
    }
}

/// An alert's state in capitals, as a heading.
pub fn state(language: Language, state: AlertState) -> &'static str {
    match (state, language) {
        (AlertState::Pending, Language::Vi) => "ĐANG CHỜ XÁC NHẬN",
        (AlertState::Pending, Language::En) => "PENDING",
        (AlertState::Firing, Language::Vi) => "ĐANG CẢNH BÁO",
        (AlertState::Firing, Language::En) => "FIRING",
        (AlertState::Resolved, Language::Vi) => "ĐÃ KHẮC PHỤC",
        (AlertState::Resolved, Language::En) => "RESOLVED",
    }
}

pub fn severity(language: Language, severity: Severity) -> &'static str {
    match (severity, language) {
        (Severity::Critical, Language::Vi) => "nghiêm trọng",
        (Severity::Critical, Language::En) => "critical",
        (Severity::Warning, Language::Vi) => "cảnh báo",
        (Severity::Warning, Language::En) => "warning",
        (Severity::Info, Language::Vi) => "thông tin",
        (Severity::Info, Language::En) => "info",
    }
}

/// The alert's summary in the language asked for, falling back to the other one when a rule
/// left it empty.
pub fn summary(language: Language, alert: &AlertMessage) -> &str {
    let (preferred, other) = match language {
        Language::Vi => (&alert.summary_vi, &alert.summary_en),
        Language::En => (&alert.summary_en, &alert.summary_vi),
    };
    if preferred.trim().is_empty() {
        other
    } else {
        preferred
    }
}

/// "3 chỉ tiêu chậm tiến độ" / "3 targets off track": what `count` alerts of one rule are.
fn active_phrase(language: Language, rule: Option<&str>, count: usize) -> String {
    let plural = count != 1;
    let english = |singular: &str, many: &str| {
        let noun = if plural { many } else { singular };
        format!("{count} {noun}")
    };
    match (rule, language) {
        (Some("slippage"), Language::Vi) => format!("{count} chỉ tiêu chậm tiến độ"),
        (Some("slippage"), Language::En) => english("target off track", "targets off track"),
        (Some("staleness"), Language::Vi) => format!("{count} nguồn số liệu quá hạn báo cáo"),
        (Some("staleness"), Language::En) => english("data feed overdue", "data feeds overdue"),
        (Some("anomaly"), Language::Vi) => format!("{count} giá trị bất thường"),
        (Some("anomaly"), Language::En) => english("anomalous value", "anomalous values"),
        (Some("rejects"), Language::Vi) => format!("{count} cảnh báo số liệu bị từ chối"),
        (Some("rejects"), Language::En) => english("rejected-data alert", "rejected-data alerts"),
        (Some("reminder"), Language::Vi) => format!("{count} nhắc hạn báo cáo số liệu"),
        (Some("reminder"), Language::En) => english("reporting reminder", "reporting reminders"),
        (Some("task_overdue"), Language::Vi) => format!("{count} nhiệm vụ quá hạn"),
        (Some("task_overdue"), Language::En) => english("overdue task", "overdue tasks"),
        (_, Language::Vi) => format!("{count} cảnh báo"),
        (_, Language::En) => english("alert firing", "alerts firing"),
    }
}

/// What the notification says, counted: "3 chỉ tiêu chậm tiến độ, 1 đã khắc phục".
pub fn headline(language: Language, notification: &Notification) -> String {
    let active: Vec<&AlertMessage> = notification
        .alerts
        .iter()
        .filter(|alert| alert.state != AlertState::Resolved)
        .collect();
    let resolved_count = notification.alerts.len() - active.len();
    if active.is_empty() {
        return match language {
            Language::Vi => format!("{resolved_count} cảnh báo đã khắc phục"),
            Language::En if resolved_count == 1 => "1 alert resolved".to_owned(),
            Language::En => format!("{resolved_count} alerts resolved"),
        };
    }
    // A rule-specific phrase only when every active alert comes from the same rule.
    let first_rule = active[0].rule.as_str();
    let common_rule = active
        .iter()
        .all(|alert| alert.rule == first_rule)
        .then_some(first_rule);
    let phrase = active_phrase(language, common_rule, active.len());
    if resolved_count == 0 {
        return phrase;
    }
    match language {
        Language::Vi => format!("{phrase}, {resolved_count} đã khắc phục"),
        Language::En => format!("{phrase}, {resolved_count} resolved"),
    }
}

/// The value of `label` when every alert of the notification carries the same one.
pub fn common_label<'a>(notification: &'a Notification, label: &str) -> Option<&'a str> {
    let mut values = notification
        .alerts
        .iter()
        .map(|alert| alert.labels.get(label).map(String::as_str));
    let first = values.next()??;
    values.all(|value| value == Some(first)).then_some(first)
}

/// Whom the notification concerns: the department when all alerts share one, else the group.
pub fn scope(notification: &Notification) -> Option<&str> {
    scoped(notification).map(|(_, code)| code)
}

/// [`scope`] with the label it comes from.
fn scoped(notification: &Notification) -> Option<(&'static str, &str)> {
    common_label(notification, "department")
        .map(|code| ("department", code))
        .or_else(|| common_label(notification, "group").map(|code| ("group", code)))
}

/// "[KT-XH] 3 chỉ tiêu chậm tiến độ — FINANCE", codes as the labels hold them.
pub fn subject(language: Language, notification: &Notification) -> String {
    subject_in(language, notification, &Directory::default())
}

/// "[KT-XH] 3 chỉ tiêu chậm tiến độ — Sở Tài chính", the scope named by `directory`.
pub fn subject_in(
    language: Language,
    notification: &Notification,
    directory: &Directory,
) -> String {
    let headline = headline(language, notification);
    match scoped(notification) {
        Some((label, code)) => format!(
            "[KT-XH] {headline} — {}",
            directory.name(language, label, code)
        ),
        None => format!("[KT-XH] {headline}"),
    }
}

/// A timestamp as people read it, always with its zone: "2026-03-05 08:00 UTC".
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One line describing an alert (Alertmanager's `description`):
/// "ĐANG CẢNH BÁO · nghiêm trọng · Đơn vị: Q1 · Từ lúc: 2026-03-05 08:00 UTC".
pub fn description(language: Language, alert: &AlertMessage) -> String {
    let mut parts = vec![
        state(language, alert.state).to_owned(),
        severity(language, alert.severity).to_owned(),
    ];
    if let Some(indicator) = alert.labels.get("indicator") {
        parts.push(format!("{}: {indicator}", term(language, Term::Indicator)));
    }
    if let Some(unit) = alert.labels.get("unit") {
        parts.push(format!("{}: {unit}", term(language, Term::Unit)));
    }
    parts.push(format!(
        "{}: {}",
        term(language, Term::Since),
        timestamp(alert.starts_at)
    ));
    if let Some(ended) = alert.ends_at {
        parts.push(format!(
            "{}: {}",
            term(language, Term::Ended),
            timestamp(ended)
        ));
    }
    parts.join(" · ")
}

/// A figure in an alert text, in the language's notation with up to two decimals:
/// `1.982.471,88` in Vietnamese, `1,982,471.88` in English; `—` when there is none.
pub fn figure(language: Language, value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| decimal(language, v, 2))
}

/// `value` with up to `max_decimals` decimals in the language's notation: `3,4` / `3.4`.
pub fn decimal(language: Language, value: f64, max_decimals: usize) -> String {
    number::format(value, max_decimals, notation(language))
}

/// The number notation a language writes: `1.234,5` in Vietnamese, `1,234.5` in English.
pub fn notation(language: Language) -> Notation {
    match language {
        Language::Vi => Notation::Vietnamese,
        Language::En => Notation::English,
    }
}

/// What a firing slippage alert asks of the owning department (an explanation, and where to
/// post it), in the language asked for; `None` for other alerts.
pub fn explanation_request(language: Language, alert: &AlertMessage) -> Option<String> {
    alert
        .explanation_request()
        .map(|request| request.text(language == Language::Vi).to_owned())
}

/// The explanation request for people: the department by its name ("Đề nghị Sở Y tế gửi
/// giải trình …"), as the rest of an e-mail or a chat message names it.
pub fn explanation_request_in(
    language: Language,
    alert: &AlertMessage,
    directory: &Directory,
) -> Option<String> {
    let request = alert.explanation_request()?;
    let code = request.department.as_str();
    let name = directory.name(language, "department", code);
    if name == code {
        return Some(request.text(language == Language::Vi).to_owned());
    }
    Some(request.text_naming(language == Language::Vi, name))
}

/// "… và 4 cảnh báo khác" / "… and 4 more": the tail of a list cut short.
pub fn and_more(language: Language, count: usize) -> String {
    match language {
        Language::Vi => format!("… và {count} cảnh báo khác"),
        Language::En => format!("… and {count} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::receivers::testing::{alert, sample_notification};

    #[test]
    fn the_language_of_the_notification_wins_over_the_receivers() {
        assert_eq!(Language::for_notification("en", Language::Vi), Language::En);
        assert_eq!(
            Language::for_notification(" VI ", Language::En),
            Language::Vi
        );
        assert_eq!(Language::for_notification("", Language::En), Language::En);
        assert_eq!(Language::for_notification("fr", Language::Vi), Language::Vi);
    }

    #[test]
    fn subjects_count_the_targets_and_name_the_department() {
        let notification = sample_notification();
        assert_eq!(
            subject(Language::Vi, &notification),
            "[KT-XH] 3 chỉ tiêu chậm tiến độ — Sở Tài chính"
        );
        assert_eq!(
            subject(Language::En, &notification),
            "[KT-XH] 3 targets off track — Sở Tài chính"
        );
    }

    #[test]
    fn headlines_mix_rules_and_count_resolved_alerts() {
        let mut notification = sample_notification();
        notification.alerts[0].state = AlertState::Resolved;
        assert_eq!(
            headline(Language::En, &notification),
            "2 targets off track, 1 resolved"
        );
        notification.alerts[1].rule = "staleness".into();
        assert_eq!(
            headline(Language::Vi, &notification),
            "2 cảnh báo, 1 đã khắc phục"
        );
        assert_eq!(
            headline(Language::En, &notification),
            "2 alerts firing, 1 resolved"
        );
        for alert in &mut notification.alerts {
            alert.state = AlertState::Resolved;
        }
        assert_eq!(
            headline(Language::Vi, &notification),
            "3 cảnh báo đã khắc phục"
        );
        notification.alerts.truncate(1);
        assert_eq!(headline(Language::En, &notification), "1 alert resolved");
    }

    #[test]
    fn english_is_singular_for_one_alert() {
        let mut notification = sample_notification();
        notification.alerts.truncate(1);
        assert_eq!(headline(Language::En, &notification), "1 target off track");
    }

    #[test]
    fn scope_falls_back_to_the_group_and_then_to_nothing() {
        let mut notification = sample_notification();
        notification.alerts[0]
            .labels
            .insert("department".into(), "Sở Y tế".into());
        assert_eq!(scope(&notification), Some("economy"));
        notification.alerts[0].labels.remove("group");
        assert_eq!(scope(&notification), None);
        assert_eq!(
            subject(Language::Vi, &notification),
            "[KT-XH] 3 chỉ tiêu chậm tiến độ"
        );
    }

    #[test]
    fn summaries_fall_back_to_the_other_language_when_empty() {
        let mut message = alert("Q1", AlertState::Firing);
        message.summary_en = String::new();
        assert_eq!(summary(Language::En, &message), message.summary_vi);
        assert_eq!(summary(Language::Vi, &message), message.summary_vi);
    }

    #[test]
    fn figures_are_written_in_the_notation_of_the_language() {
        assert_eq!(figure(Language::Vi, Some(38.9634)), "38,96");
        assert_eq!(figure(Language::En, Some(38.9634)), "38.96");
        assert_eq!(figure(Language::Vi, Some(1_982_471.88)), "1.982.471,88");
        assert_eq!(figure(Language::En, Some(1_982_471.88)), "1,982,471.88");
        assert_eq!(figure(Language::Vi, Some(-2.5)), "-2,5");
        assert_eq!(figure(Language::Vi, None), "—");
        assert_eq!(decimal(Language::Vi, 3.44, 1), "3,4");
    }

    #[test]
    fn descriptions_list_state_severity_unit_and_times() {
        let mut message = alert("Q1", AlertState::Resolved);
        message.ends_at = Some("2026-04-01T01:30:00Z".parse().unwrap());
        assert_eq!(
            description(Language::En, &message),
            "RESOLVED · critical · Indicator: GRDP_GROWTH · Unit: Q1 · \
             Since: 2026-03-05 08:00 UTC · Ended: 2026-04-01 01:30 UTC"
        );
    }
}
