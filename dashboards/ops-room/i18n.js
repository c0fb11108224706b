// UI strings in Vietnamese (the default) and English, plus locale-aware formatting.
//
// Indicator, group and unit names come from the API (name_vi / name_en); only the screen's own
// words live here. Elements in index.html carry data-i18n="key" (text) or
// data-i18n-attr="attr:key,attr:key" (attributes) and are refreshed by applyStatic().

const STORAGE_KEY = "ktxh.lang";
const LANGS = ["vi", "en"];

const STRINGS = {
  vi: {
    app_title: "Chỉ tiêu kinh tế – xã hội",
    year_label: "Năm {year}",
    skip_to_targets: "Bỏ qua, đến danh sách chỉ tiêu",
    lang_toggle: "English",
    lang_toggle_label: "Chuyển sang tiếng Anh (phím L)",
    clock_label: "Giờ thành phố",
    freshness_label: "Dữ liệu mới nhất",
    freshness_never: "chưa có dữ liệu mới",
    freshness_ago: "{ago} trước",
    conn_label: "Kết nối trực tiếp",
    conn_connecting: "Đang kết nối…",
    conn_connected: "Trực tiếp",
    conn_reconnecting: "Đang kết nối lại…",
    conn_offline: "Mất kết nối",
    conn_retry_in: "thử lại sau {s} giây",
    summary_label: "Tổng hợp {n} chỉ tiêu",
    groups_heading: "Nhóm lĩnh vực",
    groups_hint: "Chọn nhóm để lọc danh sách chỉ tiêu",
    targets_heading: "Chỉ tiêu cấp thành phố",
    targets_heading_group: "Chỉ tiêu: {group}",
    targets_sorted: "xếp từ xấu nhất",
    clear_filter: "Bỏ lọc (Esc)",
    worst_none: "Không có chỉ tiêu đáng lo",
    band: "{lo}–{hi}",
    no_value: "—",
    compare_heading: "So sánh theo phường, xã",
    compare_units: "{n} đơn vị có chỉ tiêu",
    compare_only_city: "Chỉ tiêu này chưa giao cho phường, xã, đặc khu.",
    compare_loading: "Đang tải…",
    compare_rank_note: "Xếp theo mức đạt so với kế hoạch, thấp nhất trước",
    compare_reference: "Cả thành phố",
    compare_values: "{n} đơn vị chưa giao chỉ tiêu riêng",
    compare_values_note: "Xếp theo giá trị thực hiện, tốt nhất trước",
    feed_line: "{accepted} nhận · {duplicates} trùng · {rejected} từ chối",
    alerts_heading: "Cảnh báo",
    alerts_none: "Không có cảnh báo đang hoạt động.",
    alerts_count: "{n} cảnh báo",
    alert_new: "Cảnh báo mới: {text}",
    severity_critical: "Nghiêm trọng",
    severity_warning: "Cảnh báo",
    severity_info: "Thông tin",
    back: "Quay lại (Esc)",
    ind_actual: "Thực hiện",
    ind_target: "Kế hoạch năm",
    ind_expected: "Kế hoạch đến kỳ",
    ind_projection: "Dự báo cuối năm",
    ind_interval: "Khoảng tin cậy 90%",
    ind_probability: "Xác suất đạt",
    ind_reported_through: "Số liệu đến hết",
    ind_method: "Phương pháp",
    ind_since: "Trạng thái từ",
    ind_previous: "Trạng thái trước",
    ind_tolerance: "Ngưỡng nguy cơ",
    ind_overdue: "Kỳ còn thiếu",
    ind_target_source: "Nguồn kế hoạch",
    ind_illustrative: "Kế hoạch minh họa (chưa có nguồn công bố)",
    ind_department: "Cơ quan chủ trì",
    ind_kind: "Loại chỉ tiêu",
    ind_chart_title: "Diễn biến năm {year}",
    ind_table_title: "Số liệu theo kỳ",
    ind_period: "Kỳ",
    ind_value: "Giá trị",
    ind_ytd: "Lũy kế",
    ind_not_found: "Không tìm thấy chỉ tiêu {code}.",
    ind_no_target: "Không có kế hoạch {year} cho đơn vị này.",
    ind_loading: "Đang tải số liệu…",
    ind_anomaly: "Giá trị bất thường",
    legend_actual: "Thực hiện",
    legend_actual_ytd: "Thực hiện lũy kế",
    legend_actual_avg: "Bình quân từ đầu năm",
    legend_previous: "Cùng kỳ năm trước",
    legend_target: "Kế hoạch",
    legend_band: "Vùng nguy cơ",
    legend_expected: "Lộ trình kế hoạch",
    legend_projection: "Dự báo (khoảng 90%)",
    legend_now: "Hôm nay",
    chart_label: "Biểu đồ {name}: thực hiện, kế hoạch, lộ trình và dự báo",
    kind_flow: "Dòng (cộng dồn các kỳ)",
    kind_cumulative: "Lũy kế từ đầu năm",
    kind_level: "Mức",
    kind_growth: "Tốc độ tăng",
    kind_average: "Bình quân năm",
    method_run_rate: "Theo nhịp thực hiện",
    method_run_rate_with_fit: "Theo nhịp, có hồi quy",
    method_linear_trend: "Xu thế tuyến tính",
    method_mean_with_trend: "Bình quân và xu thế",
    method_latest_value: "Giá trị mới nhất",
    method_mean_so_far: "Bình quân đến nay",
    method_final_value: "Giá trị cuối năm",
    status_on_track: "Đúng tiến độ",
    status_at_risk: "Có nguy cơ",
    status_off_track: "Chậm tiến độ",
    status_achieved: "Đã đạt",
    status_missed: "Không đạt",
    status_stale: "Chậm báo cáo",
    status_no_data: "Chưa có số liệu",
    // A late feed with the verdict on the figures that did arrive.
    late_on_track: "Chậm báo cáo · đang đúng tiến độ",
    late_at_risk: "Chậm báo cáo · có nguy cơ không đạt",
    late_off_track: "Chậm báo cáo · đang chậm tiến độ",
    late_no_data: "Chậm báo cáo · chưa có số liệu",
    signin_checking: "Đang kiểm tra…",
    signin_invalid: "Mã không hợp lệ, đã bị thu hồi hoặc hết hạn.",
    signin_error: "Không kết nối được máy chủ.",
    load_error: "Không tải được dữ liệu: {message}",
    help_keys: "Phím: Tab/mũi tên để di chuyển · Enter mở · Esc quay lại · L đổi ngôn ngữ",
  },
  en: {
    app_title: "Socio-economic targets",
    year_label: "Year {year}",
    skip_to_targets: "Skip to the target list",
    lang_toggle: "Tiếng Việt",
    lang_toggle_label: "Switch to Vietnamese (key L)",
    clock_label: "City time",
    freshness_label: "Latest data",
    freshness_never: "no new data yet",
    freshness_ago: "{ago} ago",
    conn_label: "Live connection",
    conn_connecting: "Connecting…",
    conn_connected: "Live",
    conn_reconnecting: "Reconnecting…",
    conn_offline: "Offline",
    conn_retry_in: "retrying in {s} s",
    summary_label: "Summary of {n} targets",
    groups_heading: "Sector groups",
    groups_hint: "Choose a group to filter the target list",
    targets_heading: "City-level targets",
    targets_heading_group: "Targets: {group}",
    targets_sorted: "worst first",
    clear_filter: "Clear filter (Esc)",
    worst_none: "No target of concern",
    band: "{lo}–{hi}",
    no_value: "—",
    compare_heading: "Comparison by ward and commune",
    compare_units: "{n} units with a target",
    compare_only_city: "This target has not been assigned to wards, communes or the special zone.",
    compare_loading: "Loading…",
    compare_rank_note: "Ranked by attainment against the plan, lowest first",
    compare_reference: "Whole city",
    compare_values: "{n} units without a target of their own",
    compare_values_note: "Ranked by value so far, best first",
    feed_line: "{accepted} accepted · {duplicates} duplicates · {rejected} rejected",
    alerts_heading: "Alerts",
    alerts_none: "No active alerts.",
    alerts_count: "{n} alerts",
    alert_new: "New alert: {text}",
    severity_critical: "Critical",
    severity_warning: "Warning",
    severity_info: "Info",
    back: "Back (Esc)",
    ind_actual: "Actual",
    ind_target: "Year target",
    ind_expected: "Expected to date",
    ind_projection: "Year-end projection",
    ind_interval: "90 % interval",
    ind_probability: "Probability of meeting",
    ind_reported_through: "Reported through",
    ind_method: "Method",
    ind_since: "Status since",
    ind_previous: "Previous status",
    ind_tolerance: "At-risk band",
    ind_overdue: "Missing period",
    ind_target_source: "Target source",
    ind_illustrative: "Illustrative target (no published source)",
    ind_department: "Owning department",
    ind_kind: "Kind",
    ind_chart_title: "{year} so far",
    ind_table_title: "Values by period",
    ind_period: "Period",
    ind_value: "Value",
    ind_ytd: "Year to date",
    ind_not_found: "No indicator {code}.",
    ind_no_target: "No {year} target for this unit.",
    ind_loading: "Loading data…",
    ind_anomaly: "Unusual value",
    legend_actual: "Actual",
    legend_actual_ytd: "Actual, year to date",
    legend_actual_avg: "Year-to-date average",
    legend_previous: "Same period last year",
    legend_target: "Target",
    legend_band: "At-risk band",
    legend_expected: "Expected path",
    legend_projection: "Projection (90 % interval)",
    legend_now: "Today",
    chart_label: "Chart of {name}: actual, target, expected path and projection",
    kind_flow: "Flow (periods add up)",
    kind_cumulative: "Year-to-date total",
    kind_level: "Level",
    kind_growth: "Growth rate",
    kind_average: "Year average",
    method_run_rate: "Run rate",
    method_run_rate_with_fit: "Run rate with fit",
    method_linear_trend: "Linear trend",
    method_mean_with_trend: "Mean with trend",
    method_latest_value: "Latest value",
    method_mean_so_far: "Mean so far",
    method_final_value: "Final value",
    status_on_track: "On track",
    status_at_risk: "At risk",
    status_off_track: "Off track",
    status_achieved: "Achieved",
    status_missed: "Missed",
    status_stale: "Stale",
    status_no_data: "No data",
    late_on_track: "Late · on track",
    late_at_risk: "Late · at risk",
    late_off_track: "Late · off track",
    late_no_data: "Late · no data",
    signin_checking: "Checking…",
    signin_invalid: "The token is unknown, revoked or expired.",
    signin_error: "Cannot reach the server.",
    load_error: "Could not load data: {message}",
    help_keys: "Keys: Tab/arrows to move · Enter opens · Esc goes back · L switches language",
  },
};

let current = initialLang();
const listeners = new Set();

function initialLang() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    // Storage may be disabled (kiosk profiles); fall back to Vietnamese.
  }
  return "vi";
}

export function lang() {
  return current;
}

/** Intl locale for the current language; en-GB keeps day-month order and 24-hour times. */
export function locale() {
  return current === "vi" ? "vi-VN" : "en-GB";
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // Not remembered, but the switch still applies to this session.
  }
  numberFormats.clear();
  for (const listener of listeners) listener(next);
}

export function toggleLang() {
  setLang(current === "vi" ? "en" : "vi");
}

export function onLangChange(listener) {
  listeners.add(listener);
}

/** Translates `key`, filling {placeholders} from `params`; an unknown key shows itself. */
export function t(key, params = {}) {
  const template = STRINGS[current][key] ?? STRINGS.vi[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Both languages at once ("vi / en"), for text shown before a language is chosen. */
export function both(key) {
  return `${STRINGS.vi[key]} / ${STRINGS.en[key]}`;
}

/** Picks `name_vi` / `name_en` (or any `<field>_vi` / `<field>_en`) from an API object. */
export function pick(item, field = "name") {
  if (!item) return "";
  return item[`${field}_${current}`] ?? item[`${field}_vi`] ?? "";
}

/** Refreshes the static strings of index.html and the document's lang attribute. */
export function applyStatic(root = document) {
  document.documentElement.lang = current;
  // The language button names the other language, in that language.
  for (const el of root.querySelectorAll("[data-i18n=lang_toggle]")) el.lang = current === "vi" ? "en" : "vi";
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

// Intl.NumberFormat is slow to construct; 110 rows re-render on every language switch.
const numberFormats = new Map();
function numberFormat(options) {
  const key = JSON.stringify(options);
  let format = numberFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(locale(), options);
    numberFormats.set(key, format);
  }
  return format;
}

/**
 * A value as an operator reads it: grouped digits, few decimals, and tens of millions in words
 * ("50 triệu", "50 million") so a wall row stays short.
 */
export function formatValue(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return t("no_value");
  const magnitude = Math.abs(value);
  if (magnitude >= 1e7) {
    return numberFormat({ notation: "compact", compactDisplay: "long", maximumFractionDigits: 1 }).format(value);
  }
  const decimals = magnitude >= 1000 ? 0 : magnitude >= 100 ? 1 : 2;
  return numberFormat({ maximumFractionDigits: decimals }).format(value);
}

export function formatPercent(fraction, decimals = 0) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return t("no_value");
  return numberFormat({ style: "percent", maximumFractionDigits: decimals }).format(fraction);
}

/** "12 giây", "3 phút", "2 giờ", "4 ngày" — the coarse age that a wall screen needs. */
export function formatAge(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (seconds >= size) {
      return numberFormat({ style: "unit", unit, unitDisplay: "long", maximumFractionDigits: 0 }).format(
        Math.floor(seconds / size),
      );
    }
  }
  return numberFormat({ style: "unit", unit: "second", unitDisplay: "long" }).format(seconds);
}

/** A date-time in the city's zone, e.g. "31/10/2026 17:00". */
export function formatDateTime(iso, timeZone, withTime = true) {
  if (!iso) return t("no_value");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return t("no_value");
  const options = { timeZone, day: "2-digit", month: "2-digit", year: "numeric" };
  if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit", hour12: false });
  return new Intl.DateTimeFormat(locale(), options).format(date);
}
