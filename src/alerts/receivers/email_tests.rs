//! Tests of the email receiver: the message as a pure function, and the configuration checks.
//! (Delivery to a real SMTP server is covered by the end-to-end test.)

use super::*;
use crate::alerts::receivers::directory::Directory;
use crate::alerts::receivers::testing::{
    closed_port_url, no_env, sample_notification, test_policy,
};
use crate::alerts::receivers::{ReceiverConfig, ReceiverKind, Receivers};
use crate::domain::alert::AlertState;

fn config() -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: 1025,
        starttls: None,
        username: None,
        password: None,
        password_env: None,
        from: "KT-XH Live <ktxh@ktxh.example.vn>".into(),
        to: vec![
            "so-tai-chinh@example.vn".into(),
            "Trưởng phòng <tp@example.vn>".into(),
        ],
    }
}

fn build(config: EmailConfig) -> Result<Receivers, String> {
    let receiver = ReceiverConfig {
        name: "finance".into(),
        language: None,
        kind: ReceiverKind::Email(config),
    };
    Receivers::build_with_env(&[receiver], &test_policy(), &no_env)
        .map_err(|error| error.to_string())
}

fn one_alert_notification() -> Notification {
    let mut notification = sample_notification();
    notification.alerts.truncate(1);
    notification
}

#[test]
fn the_vietnamese_email_lists_each_alert() {
    let text = compose(Language::Vi, &one_alert_notification());
    assert_eq!(
        text.subject,
        "[KT-XH] 1 chỉ tiêu chậm tiến độ — Sở Tài chính"
    );
    assert_eq!(
        text.body,
        "1 chỉ tiêu chậm tiến độ — Sở Tài chính\n\
         \n\
         1. [ĐANG CẢNH BÁO] Mức độ: nghiêm trọng\n   \
         Tăng trưởng GRDP của Q1 dự báo 6,1% < mục tiêu 8% <khẩn>\n   \
         Chỉ tiêu: GRDP_GROWTH\n   \
         Đơn vị: Q1\n   \
         Từ lúc: 2026-03-05 08:00 UTC\n   \
         Liên kết: https://ktxh.example.vn/indicators/GRDP_GROWTH?unit=Q1&year=2026\n\
         \n\
         -- \n\
         Mã thông báo: 42 · Nhóm: {department=\"Sở Tài chính\"}\n\
         Thư tự động từ KT-XH Live, vui lòng không trả lời thư này.\n"
    );
}

#[test]
fn the_english_email_uses_the_english_summaries() {
    let mut notification = one_alert_notification();
    notification.alerts[0].state = AlertState::Resolved;
    notification.alerts[0].ends_at = Some("2026-04-01T01:30:00Z".parse().unwrap());
    let text = compose(Language::En, &notification);
    assert_eq!(text.subject, "[KT-XH] 1 alert resolved — Sở Tài chính");
    assert_eq!(
        text.body,
        "1 alert resolved — Sở Tài chính\n\
         \n\
         1. [RESOLVED] Severity: critical\n   \
         GRDP growth in Q1 projected at 6.1% < target 8% <urgent>\n   \
         Indicator: GRDP_GROWTH\n   \
         Unit: Q1\n   \
         Since: 2026-03-05 08:00 UTC\n   \
         Ended: 2026-04-01 01:30 UTC\n   \
         Link: https://ktxh.example.vn/indicators/GRDP_GROWTH?unit=Q1&year=2026\n\
         \n\
         -- \n\
         Notification id: 42 · Group: {department=\"Sở Tài chính\"}\n\
         Sent automatically by KT-XH Live; please do not reply.\n"
    );
}

#[test]
fn every_alert_of_the_group_is_numbered() {
    let text = compose(Language::Vi, &sample_notification());
    assert_eq!(
        text.subject,
        "[KT-XH] 3 chỉ tiêu chậm tiến độ — Sở Tài chính"
    );
    for (number, unit) in [(1, "Q1"), (2, "Q3"), (3, "TP_THU_DUC")] {
        assert!(
            text.body.contains(&format!("\n{number}. [ĐANG CẢNH BÁO]")),
            "{}",
            text.body
        );
        assert!(
            text.body.contains(&format!("   Đơn vị: {unit}\n")),
            "{}",
            text.body
        );
    }
}

#[test]
fn the_message_carries_the_notification_id_and_a_stable_message_id() {
    let from: Mailbox = "KT-XH Live <ktxh@ktxh.example.vn>".parse().unwrap();
    let to: Vec<Mailbox> = vec![
        "a@example.vn".parse().unwrap(),
        "b@example.vn".parse().unwrap(),
    ];
    let notification = sample_notification();
    let message = build_message(
        &from,
        &to,
        &notification,
        Language::Vi,
        &Directory::default(),
    )
    .unwrap();
    let headers = message.headers();
    assert_eq!(headers.get_raw("X-KTXH-Notification-Id"), Some("42"));
    assert_eq!(
        headers.get_raw("Message-ID"),
        Some("<ktxh-notification-42.1772697900@ktxh.example.vn>")
    );
    assert_eq!(
        headers.get_raw("Subject"),
        Some("[KT-XH] 3 chỉ tiêu chậm tiến độ — Sở Tài chính")
    );
    assert_eq!(headers.get_raw("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(headers.get_raw("Content-Language"), Some("vi"));
    assert_eq!(message.envelope().to().len(), 2);

    let formatted = String::from_utf8(message.formatted()).unwrap();
    assert!(
        formatted.contains("X-KTXH-Notification-Id: 42\r\n"),
        "{formatted}"
    );
    assert!(
        formatted.contains("Content-Type: text/plain; charset=utf-8\r\n"),
        "{formatted}"
    );
    assert!(
        formatted.contains("Date: Thu, 05 Mar 2026 08:05:00 +0000\r\n"),
        "{formatted}"
    );
    // Non-ASCII subjects travel RFC 2047-encoded.
    assert!(
        formatted.contains("Subject: [KT-XH] 3 =?utf-8?b?"),
        "{formatted}"
    );

    let again = build_message(
        &from,
        &to,
        &notification,
        Language::Vi,
        &Directory::default(),
    )
    .unwrap();
    assert_eq!(
        again.formatted(),
        message.formatted(),
        "a retry sends the same bytes"
    );
}

#[test]
fn the_message_carries_each_alerts_sequence_number() {
    let from: Mailbox = "KT-XH Live <ktxh@ktxh.example.vn>".parse().unwrap();
    let to: Vec<Mailbox> = vec!["a@example.vn".parse().unwrap()];
    let mut notification = sample_notification();
    let unnumbered = build_message(
        &from,
        &to,
        &notification,
        Language::Vi,
        &Directory::default(),
    )
    .unwrap();
    assert_eq!(unnumbered.headers().get_raw(ALERT_SEQUENCE_HEADER), None);

    notification.alerts[0].sequence = Some(4);
    notification.alerts[2].sequence = Some(1);
    let message = build_message(
        &from,
        &to,
        &notification,
        Language::Vi,
        &Directory::default(),
    )
    .unwrap();
    assert_eq!(
        message.headers().get_raw(ALERT_SEQUENCE_HEADER),
        Some("slippage-GRDP_GROWTH-Q1=4, slippage-GRDP_GROWTH-TP_THU_DUC=1")
    );
}

#[test]
fn security_follows_the_port_unless_configured() {
    assert_eq!(SmtpSecurity::default_for_port(465), SmtpSecurity::Tls);
    assert_eq!(SmtpSecurity::default_for_port(587), SmtpSecurity::Starttls);
    assert_eq!(SmtpSecurity::default_for_port(25), SmtpSecurity::None);
    assert_eq!(SmtpSecurity::default_for_port(1025), SmtpSecurity::None);
    assert!(build(EmailConfig {
        port: 465,
        host: "smtp.example.vn".into(),
        ..config()
    })
    .is_ok());
}

#[test]
fn bad_addresses_are_refused_at_start() {
    let error = build(EmailConfig {
        from: "not an address".into(),
        ..config()
    })
    .unwrap_err();
    assert!(
        error.starts_with(
            "receiver `finance`: `from` has `not an address`, which is not an email address"
        ),
        "{error}"
    );
    let error = build(EmailConfig {
        to: vec!["ok@example.vn".into(), "@nowhere".into()],
        ..config()
    })
    .unwrap_err();
    assert!(
        error.starts_with("receiver `finance`: `to` has `@nowhere`"),
        "{error}"
    );
    let error = build(EmailConfig {
        to: vec![],
        ..config()
    })
    .unwrap_err();
    assert_eq!(error, "receiver `finance`: `to` lists no recipient");
}

#[test]
fn a_password_is_not_sent_in_plain_text_to_another_machine() {
    let with_login = |host: &str, starttls| EmailConfig {
        host: host.into(),
        starttls,
        username: Some("ktxh".into()),
        password: Some(SecretString::new("pw")),
        ..config()
    };
    let error = build(with_login("smtp.example.vn", None)).unwrap_err();
    assert!(
        error.contains("refusing to send a password without TLS"),
        "{error}"
    );
    assert!(build(with_login("smtp.example.vn", Some(SmtpSecurity::Starttls))).is_ok());
    assert!(build(with_login("127.0.0.1", None)).is_ok());
    assert!(build(with_login("localhost", None)).is_ok());
    assert!(build(with_login("[::1]", None)).is_ok());
}

#[test]
fn username_and_password_come_together() {
    let error = build(EmailConfig {
        username: Some("ktxh".into()),
        ..config()
    })
    .unwrap_err();
    assert_eq!(
        error,
        "receiver `finance`: `username` is set without a password"
    );
    let error = build(EmailConfig {
        password: Some(SecretString::new("pw")),
        ..config()
    })
    .unwrap_err();
    assert_eq!(
        error,
        "receiver `finance`: a password is set without `username`"
    );
    let error = build(EmailConfig {
        username: Some("ktxh".into()),
        password_env: Some("KTXH_TEST_UNSET_SMTP_PASSWORD".into()),
        ..config()
    })
    .unwrap_err();
    assert_eq!(
        error,
        "receiver `finance`: environment variable KTXH_TEST_UNSET_SMTP_PASSWORD \
         (from `password_env`) is not set or empty"
    );
}

#[tokio::test]
async fn a_mail_server_that_does_not_answer_is_a_temporary_error() {
    let url = closed_port_url().await;
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    let receivers = build(EmailConfig { port, ..config() }).unwrap();
    let error = receivers.deliver(&sample_notification()).await.unwrap_err();
    assert!(matches!(error, DeliveryError::Smtp { .. }), "{error:?}");
    assert!(!error.is_permanent(), "{error}");
}

#[test]
fn the_email_carries_the_working_under_the_short_summary() {
    let mut notification = one_alert_notification();
    notification.alerts[0].working = Some(crate::domain::alert::AlertWorking {
        measure_vi: "tỷ đồng".into(),
        measure_en: "VND billion".into(),
        actual: Some(20_100.5),
        expected: Some(22_000.0),
        projection: Some(26_530.47),
        interval: Some([25_100.0, 27_960.0]),
        probability: Some(0.25),
        target: Some(28_000.0),
        target_low: None,
        target_high: None,
        target_since: Some("2026-03-01T02:00:00Z".parse().expect("instant")),
        target_reason: Some("điều chỉnh giữa năm".into()),
        target_source: None,
    });
    let vi = compose(Language::Vi, &notification).body;
    let summary = "   Tăng trưởng GRDP của Q1 dự báo 6,1% < mục tiêu 8% <khẩn>\n";
    let working = "   Thực hiện: 20.100,5 tỷ đồng\n   \
         Kế hoạch đến nay: 22.000 tỷ đồng\n   \
         Dự báo cả năm: 26.530 tỷ đồng (khoảng tin cậy 90 %: 25.100 – 27.960 tỷ đồng)\n   \
         Khả năng đạt mục tiêu: 25 %\n   \
         Mục tiêu: 28.000 tỷ đồng (phiên bản áp dụng từ 2026-03-01 02:00 UTC; lý do: điều \
         chỉnh giữa năm)\n   \
         Chỉ tiêu: GRDP_GROWTH\n";
    assert!(vi.contains(&format!("{summary}{working}")), "{vi}");
    let en = compose(Language::En, &notification).body;
    for line in [
        "   Actual: 20,100.5 VND billion\n",
        "   Expected to date: 22,000 VND billion\n",
        "   Projection for the year: 26,530 VND billion (90 % interval: 25,100 – 27,960 VND billion)\n",
        "   Chance of meeting the target: 25 %\n",
        "   Target: 28,000 VND billion (version in force since 2026-03-01 02:00 UTC; reason: điều chỉnh giữa năm)\n",
    ] {
        assert!(en.contains(line), "{line:?} in {en}");
    }
    // Without working (a reminder, a late task) the section is as before.
    notification.alerts[0].working = None;
    assert!(!compose(Language::Vi, &notification)
        .body
        .contains("Thực hiện"));
}

#[test]
fn an_email_names_its_codes_and_tells_times_in_the_citys_zone() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let catalogue = crate::config::load_catalogue(&dir).expect("the shipped catalogue");
    let directory = Directory::new(&catalogue, chrono_tz::Asia::Ho_Chi_Minh);
    let mut notification = one_alert_notification();
    for alert in &mut notification.alerts {
        alert.labels.insert("department".into(), "FINANCE".into());
        alert.labels.insert("unit".into(), "HCM".into());
    }
    let vi = compose_in(Language::Vi, &notification, &directory);
    assert_eq!(vi.subject, "[KT-XH] 1 chỉ tiêu chậm tiến độ — Sở Tài chính");
    for line in [
        "Chỉ tiêu: Tốc độ tăng trưởng tổng sản phẩm trên địa bàn (GRDP, giá so sánh) (GRDP_GROWTH)",
        "Đơn vị: Thành phố Hồ Chí Minh (HCM)",
        "Từ lúc: 05/03/2026 15:00 (UTC+07:00)",
    ] {
        assert!(vi.body.contains(line), "{line}: {}", vi.body);
    }
    let en = compose_in(Language::En, &notification, &directory);
    assert_eq!(
        en.subject,
        "[KT-XH] 1 target off track — Department of Finance"
    );
    assert!(
        en.body.contains("2026-03-05 15:00 (UTC+07:00)"),
        "{}",
        en.body
    );
    // Without a directory, codes and UTC, as before.
    let bare = compose(Language::Vi, &notification);
    assert!(bare.subject.ends_with("— FINANCE"), "{}", bare.subject);
    assert!(bare.body.contains("2026-03-05 08:00 UTC"), "{}", bare.body);

    // A slipping target's explanation request names the department as people know it.
    for alert in &mut notification.alerts {
        alert.rule = "slippage".into();
        alert.labels.insert("year".into(), "2026".into());
    }
    let vi = compose_in(Language::Vi, &notification, &directory);
    assert!(
        vi.body.contains("Đề nghị Sở Tài chính gửi giải trình"),
        "{}",
        vi.body
    );
    let en = compose_in(Language::En, &notification, &directory);
    assert!(
        en.body
            .contains("Department of Finance is asked to explain why this 2026 target slips"),
        "{}",
        en.body
    );
    let bare = compose(Language::Vi, &notification);
    assert!(
        bare.body
            .contains("Đề nghị sở, ngành phụ trách (FINANCE) gửi giải trình"),
        "{}",
        bare.body
    );
}
