use super::*;
use crate::alerts::receivers::testing::alert;
use crate::domain::alert::AlertState;

fn exports() -> AlertWorking {
    AlertWorking {
        measure_vi: "tỷ đồng".into(),
        measure_en: "VND billion".into(),
        actual: Some(20_100.5),
        expected: Some(22_000.0),
        projection: Some(26_530.471_2),
        interval: Some([25_100.0, 27_960.25]),
        probability: Some(0.2349),
        target: Some(28_000.0),
        target_low: None,
        target_high: None,
        target_since: Some("2026-03-01T02:00:00Z".parse().expect("instant")),
        target_reason: Some("Nghị quyết 12/NQ-HĐND điều chỉnh".into()),
        target_source: Some("NQ 01/NQ-HĐND".into()),
    }
}

fn growth() -> AlertWorking {
    AlertWorking {
        measure_vi: "%".into(),
        measure_en: "%".into(),
        actual: Some(6.1),
        expected: None,
        projection: Some(38.9634),
        interval: None,
        probability: None,
        target: None,
        target_low: Some(7.5),
        target_high: Some(8.0),
        target_since: None,
        target_reason: None,
        target_source: None,
    }
}

#[test]
fn quantities_are_written_in_the_languages_notation_with_their_measure() {
    // value | measure | Vietnamese | English
    let cases: &[(Option<f64>, &str, &str, &str)] = &[
        (
            Some(26_530.47),
            "tỷ đồng",
            "26.530,47 tỷ đồng",
            "26,530.47 tỷ đồng",
        ),
        (Some(38.963), "%", "38,96 %", "38.96 %"),
        (
            Some(1_982_471.88),
            "VND billion",
            "1.982.471,88 VND billion",
            "1,982,471.88 VND billion",
        ),
        (Some(10.0), "lượt", "10 lượt", "10 lượt"),
        (Some(-2.5), "% GRDP", "-2,5 % GRDP", "-2.5 % GRDP"),
        (Some(1_234.0), "", "1.234", "1,234"),
        (None, "%", "—", "—"),
    ];
    for &(value, measure, vi, en) in cases {
        assert_eq!(quantity(Language::Vi, value, measure), vi, "{value:?}");
        assert_eq!(quantity(Language::En, value, measure), en, "{value:?}");
    }
}

#[test]
fn targets_are_a_value_or_a_band_in_the_measure_of_the_language() {
    assert_eq!(target(Language::Vi, &exports()), "28.000 tỷ đồng");
    assert_eq!(target(Language::En, &exports()), "28,000 VND billion");
    assert_eq!(target(Language::Vi, &growth()), "7,5–8 %");
    assert_eq!(target(Language::En, &growth()), "7.5–8 %");
    let none = AlertWorking {
        target: None,
        ..exports()
    };
    assert_eq!(target(Language::Vi, &none), "—");
}

#[test]
fn the_short_form_gives_the_projection_against_the_target() {
    // language | working | summary
    let without_projection = AlertWorking {
        projection: None,
        ..exports()
    };
    let without_figures = AlertWorking {
        projection: None,
        actual: None,
        ..exports()
    };
    let cases: Vec<(Language, AlertWorking, &str)> = vec![
        (
            Language::Vi,
            exports(),
            "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ; dự báo 26.530 tỷ đồng, \
             mục tiêu 28.000 tỷ đồng",
        ),
        (
            Language::En,
            exports(),
            "Kim ngạch xuất khẩu – TP.HCM 2026: chậm tiến độ; projected 26,530 VND billion, \
             target 28,000 VND billion",
        ),
        (
            Language::Vi,
            growth(),
            "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ; dự báo 38,96 %, mục tiêu 7,5–8 %",
        ),
        (
            Language::En,
            growth(),
            "Kim ngạch xuất khẩu – TP.HCM 2026: chậm tiến độ; projected 38.96 %, target 7.5–8 %",
        ),
        (
            Language::Vi,
            without_projection.clone(),
            "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ; thực hiện 20.100,5 tỷ đồng, \
             mục tiêu 28.000 tỷ đồng",
        ),
        (
            Language::En,
            without_projection,
            "Kim ngạch xuất khẩu – TP.HCM 2026: chậm tiến độ; actual 20,100.5 VND billion, \
             target 28,000 VND billion",
        ),
        (
            Language::Vi,
            without_figures,
            "Kim ngạch xuất khẩu – TP.HCM năm 2026: chậm tiến độ",
        ),
    ];
    for (language, working, want) in cases {
        let got = slippage_summary(
            language,
            "Kim ngạch xuất khẩu – TP.HCM",
            2026,
            "chậm tiến độ",
            &working,
        );
        assert_eq!(got, want, "{language:?}");
    }
}

#[test]
fn the_full_form_carries_the_working_in_each_languages_notation() {
    let utc = Directory::default();
    let mut message = alert("HCM", AlertState::Firing);
    message.working = Some(exports());
    assert_eq!(
        working_lines(Language::Vi, &message, &utc),
        [
            "Thực hiện: 20.100,5 tỷ đồng",
            "Kế hoạch đến nay: 22.000 tỷ đồng",
            "Dự báo cả năm: 26.530 tỷ đồng (khoảng tin cậy 90 %: 25.100 – 27.960 tỷ đồng)",
            "Khả năng đạt mục tiêu: 23 %",
            "Mục tiêu: 28.000 tỷ đồng (phiên bản áp dụng từ 2026-03-01 02:00 UTC; \
             lý do: Nghị quyết 12/NQ-HĐND điều chỉnh; nguồn: NQ 01/NQ-HĐND)",
        ]
    );
    assert_eq!(
        working_lines(Language::En, &message, &utc),
        [
            "Actual: 20,100.5 VND billion",
            "Expected to date: 22,000 VND billion",
            "Projection for the year: 26,530 VND billion (90 % interval: 25,100 – 27,960 \
             VND billion)",
            "Chance of meeting the target: 23 %",
            "Target: 28,000 VND billion (version in force since 2026-03-01 02:00 UTC; \
             reason: Nghị quyết 12/NQ-HĐND điều chỉnh; source: NQ 01/NQ-HĐND)",
        ]
    );
    message.working = Some(growth());
    assert_eq!(
        working_lines(Language::Vi, &message, &utc),
        [
            "Thực hiện: 6,1 %",
            "Dự báo cả năm: 38,96 %",
            "Mục tiêu: 7,5–8 %"
        ]
    );
    message.working = None;
    assert!(working_lines(Language::Vi, &message, &utc).is_empty());
}

#[test]
fn a_chance_is_never_rounded_to_a_certainty_and_estimates_are_whole_from_a_thousand() {
    assert_eq!(chance(Language::Vi, 0.999), "> 99 %");
    assert_eq!(chance(Language::En, 0.004), "< 1 %");
    assert_eq!(chance(Language::Vi, 1.0), "100 %");
    assert_eq!(chance(Language::Vi, 0.0), "0 %");
    assert_eq!(chance(Language::Vi, 0.254), "25 %");
    assert_eq!(
        estimate(Language::Vi, Some(744_462.31), "tỷ đồng"),
        "744.462 tỷ đồng"
    );
    assert_eq!(estimate(Language::En, Some(96.456), "%"), "96.46 %");
}

#[test]
fn the_target_versions_time_is_told_in_the_citys_zone() {
    let city = Directory::new(
        &crate::domain::Catalogue::default(),
        chrono_tz::Asia::Ho_Chi_Minh,
    );
    let mut message = alert("HCM", AlertState::Firing);
    message.working = Some(exports());
    let target_line = |language| {
        working_lines(language, &message, &city)
            .pop()
            .expect("a target line")
    };
    assert!(
        target_line(Language::Vi).contains("phiên bản áp dụng từ 01/03/2026 09:00 (UTC+07:00)"),
        "{}",
        target_line(Language::Vi)
    );
    assert!(
        target_line(Language::En).contains("version in force since 2026-03-01 09:00 (UTC+07:00)"),
        "{}",
        target_line(Language::En)
    );
}

#[test]
fn an_unusual_figure_is_told_by_its_step_against_the_usual_one() {
    let flagged = |change: f64, median_change: f64, z: Option<f64>| FlaggedValue {
        period: "2025-12".into(),
        value: 29_000.0,
        change,
        z,
        median_change,
        threshold: 3.5,
        at: "2026-01-05T02:00:00Z".parse().expect("instant"),
    };
    let exports = flagged(12_886.0, 100.0, Some(86.2));
    assert_eq!(
        unusual_step(Language::Vi, &exports, "tỷ đồng"),
        "tăng 12.886 tỷ đồng so với kỳ trước; các kỳ gần đây thường tăng khoảng 100 tỷ đồng"
    );
    assert_eq!(
        unusual_step(Language::En, &exports, "VND billion"),
        "rose by 12,886 VND billion on the previous period; recent periods usually rose by \
         about 100 VND billion"
    );
    // A rate moves in points; a window of equal steps says so.
    let rate = flagged(-2.5, 0.1, None);
    assert_eq!(
        unusual_step(Language::Vi, &rate, "%"),
        "giảm 2,5 điểm % so với kỳ trước; các kỳ gần đây đều tăng 0,1 điểm %"
    );
    assert_eq!(
        unusual_step(Language::En, &rate, "%"),
        "fell by 2.5 pp on the previous period; recent periods all rose by 0.1 pp"
    );
    let flat = flagged(5_000.0, 0.5, Some(40.0));
    assert_eq!(
        unusual_step(Language::En, &flat, "passengers"),
        "rose by 5,000 passengers on the previous period; recent periods usually barely changed"
    );
}
