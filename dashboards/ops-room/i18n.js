// UI strings in Vietnamese (the default) and English, plus locale-aware formatting.
//
// Indicator, group and unit names come from the API (name_vi / name_en); only the screen's own
// words live here. Elements in index.html carry data-i18n="key" (text) or
// data-i18n-attr="attr:key,attr:key" (attributes) and are refreshed by applyStatic().

const STORAGE_KEY = "ktxh.lang";
const LANGS = ["vi", "en"];

const STRINGS = {
  vi: {
    coverage_reported: "{reported}/{expected} phường, xã đã báo cáo",
    ind_coverage: "Phường, xã đã báo cáo",
    coverage_period: "kỳ {period}",
    coverage_computed: "số liệu tổng hợp từ phường, xã",
    coverage_own: "đơn vị tự báo cáo {own}; tổng hợp từ phường, xã {computed}",
    coverage_flagged: "chênh lệch {difference}",
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
    tasks_title: "Nhiệm vụ theo chỉ đạo",
    tasks_as_of: "Số liệu lúc {at}",
    tasks_done_label: "nhiệm vụ hoàn thành",
    tasks_total: "Tổng số nhiệm vụ",
    tasks_overdue_heading: "Nhiệm vụ quá hạn ({n})",
    tasks_all_heading: "Danh sách nhiệm vụ ({n})",
    tasks_by_department: "Theo cơ quan chủ trì",
    tasks_by_group: "Theo nhóm lĩnh vực",
    tasks_filter_department: "Cơ quan chủ trì",
    tasks_filter_group: "Nhóm lĩnh vực",
    tasks_filter_status: "Tình trạng",
    tasks_filter_all: "Tất cả",
    tasks_filter_by: "Chỉ xem nhiệm vụ của {name}",
    tasks_no_overdue: "Không có nhiệm vụ quá hạn.",
    tasks_none: "Không có nhiệm vụ nào.",
    tasks_col_task: "Nhiệm vụ",
    tasks_col_directive: "Văn bản chỉ đạo",
    tasks_col_owner: "Cơ quan chủ trì",
    tasks_col_late: "Quá hạn",
    tasks_col_progress: "Tiến độ mới nhất",
    tasks_col_due: "Thời hạn",
    tasks_col_status: "Tình trạng",
    tasks_n_overdue: "{n} quá hạn",
    tasks_n_in_progress: "{n} đang thực hiện",
    tasks_counter: "nhiệm vụ hoàn thành",
    tasks_counter_label: "{done}/{total} nhiệm vụ hoàn thành, {overdue} quá hạn: mở danh sách nhiệm vụ",
    task_status_not_started: "Chưa thực hiện",
    task_status_in_progress: "Đang thực hiện",
    task_status_done: "Hoàn thành",
    task_status_done_late: "Hoàn thành trễ hạn",
    task_status_overdue: "Quá hạn",
    task_kind_ket_luan: "Kết luận",
    task_kind_chi_thi: "Chỉ thị",
    task_kind_nghi_quyet: "Nghị quyết",
    task_kind_ke_hoach: "Kế hoạch",
    task_kind_quyet_dinh: "Quyết định",
    task_kind_cong_van: "Công văn",
    task_kind_thong_bao: "Thông báo",
    task_directive: "{number} ngày {date}",
    task_due_on: "hạn {date}",
    task_done_on: "xong ngày {date}",
    task_days_late: "quá {n} ngày",
    task_no_progress: "Chưa báo cáo tiến độ",
    task_linked: "Nhiệm vụ liên quan ({n})",
    task_page_title: "Nhiệm vụ",
    task_unknown: "Không có nhiệm vụ mã {code}.",
    task_unavailable: "Chưa đọc được danh sách nhiệm vụ: {message}",
    task_forbidden: "Mã truy cập này không được xem nhiệm vụ này.",
    task_f_heading: "Thông tin nhiệm vụ",
    task_f_directive: "Văn bản chỉ đạo",
    task_f_directive_title: "Trích yếu",
    task_f_owner: "Cơ quan chủ trì",
    task_f_cooperating: "Cơ quan phối hợp",
    task_f_group: "Nhóm lĩnh vực",
    task_f_due: "Thời hạn",
    task_f_late: "Trễ hạn",
    task_f_completed: "Ngày hoàn thành",
    task_f_percent: "Mức hoàn thành",
    task_f_indicators: "Chỉ tiêu liên quan",
    task_notes_heading: "Báo cáo tiến độ ({n})",
    task_problem_forbidden: "Sở chỉ được báo cáo tiến độ nhiệm vụ do sở mình chủ trì",
    task_problem_invalid_field: "Thông tin chưa hợp lệ",
    task_problem_not_found: "Không có nhiệm vụ này",
    dep_tasks: "Nhiệm vụ được giao",
    dep_tasks_none: "Sở chưa được giao nhiệm vụ nào.",
    dep_tasks_summary: "{done}/{n} nhiệm vụ hoàn thành, {overdue} quá hạn",
    dep_task_report: "Báo cáo tiến độ",
    dep_task_f_task: "Nhiệm vụ",
    dep_task_f_note: "Nội dung tiến độ",
    dep_task_f_percent: "Mức hoàn thành (%)",
    dep_task_f_status: "Tình trạng",
    dep_task_keep: "Giữ nguyên",
    dep_task_f_completed: "Ngày hoàn thành",
    dep_task_submit: "Gửi báo cáo tiến độ",
    dep_task_stored: "Đã ghi báo cáo tiến độ của nhiệm vụ {code}.",
    dep_task_receipt: "Biên nhận: lưu lúc {at}",
    dep_task_refused: "Báo cáo tiến độ bị từ chối",
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
    // Explanations (giải trình) of slipping targets: explanation.js.
    expl_age: "giải trình {ago} trước",
    expl_given: "đã giải trình",
    expl_missing: "chưa có giải trình",
    expl_missing_long: "Chỉ tiêu chậm tiến độ nhưng cơ quan chủ trì chưa có giải trình.",
    expl_heading: "Giải trình của cơ quan chủ trì",
    expl_meta: "{age} · {by} ({department}) · {at}",
    expl_actions: "Giải pháp",
    expl_earlier: "{n} giải trình trước đó",
    expl_due: "hạn {due}",
    expl_overdue: "quá hạn {due}",
    expl_done: "hạn {due} · đã xong {done}",
    signin_checking: "Đang kiểm tra…",
    signin_invalid: "Mã không hợp lệ, đã bị thu hồi hoặc hết hạn.",
    signin_error: "Không kết nối được máy chủ.",
    load_error: "Không tải được dữ liệu: {message}",
    help_keys: "Phím: Tab/mũi tên để di chuyển · Enter mở · Esc quay lại · L đổi ngôn ngữ",
    // The department's own page (department.js).
    dep_crumbs: "Trang của sở, ngành · năm {year}",
    dep_pick: "Chọn sở, ngành",
    dep_none: "Mã truy cập này không xem được trang của sở, ngành nào.",
    dep_forbidden: "Mã truy cập này chỉ xem được trang của sở mình, không xem được {code}.",
    dep_unknown: "Không có sở, ngành {code}.",
    dep_indicators: "Chỉ tiêu của sở: tình trạng và hạn báo cáo",
    dep_summary: "{n} chỉ tiêu · {late} chỉ tiêu trễ hạn báo cáo",
    dep_col_indicator: "Chỉ tiêu",
    dep_col_status: "Tình trạng",
    dep_col_latest: "Số liệu mới nhất",
    dep_col_due: "Kỳ đến hạn",
    dep_col_next: "Kỳ tiếp theo",
    dep_no_target: "Chưa giao kế hoạch",
    dep_late: "Trễ hạn: kỳ {period}, quá {days} ngày",
    dep_in: "Đã có kỳ {period}",
    dep_next: "Kỳ {period}, hạn {date}",
    dep_rejections: "Dòng số liệu bị từ chối gần đây",
    dep_no_rejections: "Chưa có dòng nào bị từ chối.",
    dep_row: "dòng {n}",
    dep_line: "dòng {n} của tệp",
    dep_feeds: "Nguồn số liệu của sở",
    dep_no_feeds: "Sở chưa có nguồn tự thu (kéo định kỳ, MQTT, NATS).",
    dep_feed_ok: "Hoạt động tốt",
    dep_feed_failing: "Đang lỗi",
    dep_feed_never_run: "Chưa chạy",
    dep_feed_success: "thành công lần cuối {at}",
    dep_pushes: "Các lần gửi gần đây",
    dep_no_pushes: "Máy chủ này chưa nhận lần gửi nào của sở từ khi khởi động.",
    dep_entry: "Nhập số liệu",
    dep_f_indicator: "Chỉ tiêu",
    dep_f_unit: "Đơn vị",
    dep_f_period: "Kỳ",
    dep_f_value: "Giá trị",
    dep_f_decimal: "Dấu thập phân",
    dep_decimal_point: "Dấu chấm (1234.5)",
    dep_decimal_comma: "Dấu phẩy (1.234,5)",
    dep_f_hint: "Kỳ {periodicity}, ví dụ {example}. Giá trị hợp lý: {lo}–{hi} {measure}.",
    dep_per_yearly: "năm",
    dep_per_quarterly: "quý",
    dep_per_monthly: "tháng",
    dep_per_daily: "ngày",
    dep_preview: "Kiểm tra trước",
    dep_submit: "Gửi số liệu",
    dep_checking: "Đang kiểm tra…",
    dep_valid: "Hợp lệ: bấm «Gửi số liệu» để lưu.",
    dep_stored: "Đã lưu số liệu.",
    dep_duplicate: "Trùng với số liệu đã lưu: không có gì thay đổi.",
    dep_receipt: "Biên nhận: lần sửa {revision}, lưu lúc {at}",
    dep_range: "Khoảng hợp lý của chỉ tiêu: {lo}–{hi} {measure}.",
    dep_upload: "Tải tệp CSV",
    dep_u_file: "Tệp CSV (UTF-8)",
    dep_u_hint: "Dòng đầu là tiêu đề cột:",
    dep_u_xlsx: "Chưa đọc trực tiếp tệp Excel (XLSX): hãy lưu thành «CSV UTF-8» rồi tải lên.",
    dep_u_check: "Kiểm tra tệp",
    dep_u_send: "Gửi tệp",
    dep_u_none: "Chưa chọn tệp.",
    dep_u_preview: "Kiểm tra xong: {accepted} dòng hợp lệ, {rejected} dòng bị từ chối. Chưa lưu gì.",
    dep_u_done: "Đã gửi: {accepted} dòng lưu, {duplicates} dòng trùng, {rejected} dòng bị từ chối.",
    reject_malformed_row: "Dòng không đọc được",
    reject_missing_field: "Thiếu trường bắt buộc",
    reject_unknown_indicator: "Mã chỉ tiêu không có trong danh mục",
    reject_unknown_unit: "Mã đơn vị không có trong danh mục",
    reject_unit_not_reporting: "Chỉ tiêu này không nhận số liệu của đơn vị đó",
    reject_invalid_period: "Kỳ báo cáo không hợp lệ",
    reject_period_mismatch: "Kỳ báo cáo không đúng tần suất của chỉ tiêu",
    reject_period_in_future: "Kỳ báo cáo chưa kết thúc",
    reject_invalid_value: "Giá trị không phải là số",
    reject_ambiguous_number: "Số có dấu phẩy không rõ nghĩa: chọn dấu thập phân là dấu phẩy, hoặc viết bằng dấu chấm",
    reject_value_not_finite: "Giá trị không hữu hạn",
    reject_value_out_of_range: "Giá trị nằm ngoài khoảng hợp lý của chỉ tiêu",
    reject_field_too_long: "Trường quá dài",
    reject_invalid_text: "Văn bản chứa ký tự không hợp lệ",
    reject_invalid_reported_at: "Thời điểm công bố không hợp lệ",
    reject_reported_at_in_future: "Thời điểm công bố ở tương lai",
    reject_reported_at_before_period: "Thời điểm công bố trước khi kỳ bắt đầu",
    reject_reported_at_too_old: "Thời điểm công bố quá xa trong quá khứ",
    reject_foreign_indicators: "Chỉ tiêu không thuộc sở của mã truy cập này",
    reject_forbidden: "Mã truy cập này không được gửi số liệu",
    reject_invalid_field: "Yêu cầu có trường không hợp lệ",
    reject_malformed_json: "Nội dung gửi không đúng định dạng",
    reject_too_many_rows: "Tệp có quá nhiều dòng cho một lần gửi: hãy chia nhỏ",
    reject_payload_too_large: "Tệp quá lớn",
    reject_other: "Bị từ chối ({code})",
    state_preliminary: "sơ bộ",
    state_verified: "đã kiểm tra",
    state_official: "chính thức",
    state_hint: "Số liệu chưa được công bố chính thức; báo cáo chỉ dùng số liệu chính thức",
    ind_state: "Số liệu",
  },
  en: {
    coverage_reported: "{reported} of {expected} wards and communes reported",
    ind_coverage: "Wards and communes reported",
    coverage_period: "period {period}",
    coverage_computed: "rolled up from wards and communes",
    coverage_own: "reported by the unit {own}; rolled up from wards and communes {computed}",
    coverage_flagged: "differs by {difference}",
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
    tasks_title: "Tasks from directives",
    tasks_as_of: "As of {at}",
    tasks_done_label: "tasks done",
    tasks_total: "All tasks",
    tasks_overdue_heading: "Overdue tasks ({n})",
    tasks_all_heading: "All tasks ({n})",
    tasks_by_department: "By lead department",
    tasks_by_group: "By sector group",
    tasks_filter_department: "Lead department",
    tasks_filter_group: "Sector group",
    tasks_filter_status: "Status",
    tasks_filter_all: "All",
    tasks_filter_by: "Show only the tasks of {name}",
    tasks_no_overdue: "No task is overdue.",
    tasks_none: "No tasks.",
    tasks_col_task: "Task",
    tasks_col_directive: "Directive",
    tasks_col_owner: "Lead department",
    tasks_col_late: "Overdue",
    tasks_col_progress: "Latest progress",
    tasks_col_due: "Due",
    tasks_col_status: "Status",
    tasks_n_overdue: "{n} overdue",
    tasks_n_in_progress: "{n} in progress",
    tasks_counter: "tasks done",
    tasks_counter_label: "{done} of {total} tasks done, {overdue} overdue: open the task list",
    task_status_not_started: "Not started",
    task_status_in_progress: "In progress",
    task_status_done: "Done",
    task_status_done_late: "Done late",
    task_status_overdue: "Overdue",
    task_kind_ket_luan: "Conclusion",
    task_kind_chi_thi: "Directive",
    task_kind_nghi_quyet: "Resolution",
    task_kind_ke_hoach: "Plan",
    task_kind_quyet_dinh: "Decision",
    task_kind_cong_van: "Official letter",
    task_kind_thong_bao: "Notice",
    task_directive: "{number} of {date}",
    task_due_on: "due {date}",
    task_done_on: "done {date}",
    task_days_late: "{n} days late",
    task_no_progress: "No progress reported",
    task_linked: "Related tasks ({n})",
    task_page_title: "Task",
    task_unknown: "There is no task {code}.",
    task_unavailable: "The task list could not be read: {message}",
    task_forbidden: "This token may not read this task.",
    task_f_heading: "The task",
    task_f_directive: "Directive",
    task_f_directive_title: "Subject",
    task_f_owner: "Lead department",
    task_f_cooperating: "Co-operating",
    task_f_group: "Sector group",
    task_f_due: "Due",
    task_f_late: "Late",
    task_f_completed: "Done on",
    task_f_percent: "Completion",
    task_f_indicators: "Related indicators",
    task_notes_heading: "Progress reports ({n})",
    task_problem_forbidden: "A department reports progress only on the tasks it leads",
    task_problem_invalid_field: "Something in the report is not valid",
    task_problem_not_found: "There is no such task",
    dep_tasks: "Our tasks",
    dep_tasks_none: "No task is assigned to the department.",
    dep_tasks_summary: "{done} of {n} tasks done, {overdue} overdue",
    dep_task_report: "Report progress",
    dep_task_f_task: "Task",
    dep_task_f_note: "Progress",
    dep_task_f_percent: "Completion (%)",
    dep_task_f_status: "Status",
    dep_task_keep: "Unchanged",
    dep_task_f_completed: "Done on",
    dep_task_submit: "Send the progress report",
    dep_task_stored: "Progress of task {code} recorded.",
    dep_task_receipt: "Receipt: stored at {at}",
    dep_task_refused: "The progress report was refused",
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
    expl_age: "explained {ago} ago",
    expl_given: "explained",
    expl_missing: "no explanation yet",
    expl_missing_long: "The target slips and its lead department has not explained it yet.",
    expl_heading: "The lead department's explanation",
    expl_meta: "{age} · {by} ({department}) · {at}",
    expl_actions: "Actions",
    expl_earlier: "{n} earlier explanations",
    expl_due: "due {due}",
    expl_overdue: "overdue since {due}",
    expl_done: "due {due} · done {done}",
    signin_checking: "Checking…",
    signin_invalid: "The token is unknown, revoked or expired.",
    signin_error: "Cannot reach the server.",
    load_error: "Could not load data: {message}",
    help_keys: "Keys: Tab/arrows to move · Enter opens · Esc goes back · L switches language",
    dep_crumbs: "Department page · {year}",
    dep_pick: "Choose a department",
    dep_none: "This token may not read any department's page.",
    dep_forbidden: "This token reads its own department's page only, not {code}.",
    dep_unknown: "No department {code}.",
    dep_indicators: "Our indicators: status and due figures",
    dep_summary: "{n} indicators · {late} late",
    dep_col_indicator: "Indicator",
    dep_col_status: "Status",
    dep_col_latest: "Latest figure",
    dep_col_due: "Due period",
    dep_col_next: "Next period",
    dep_no_target: "No target set",
    dep_late: "Late: {period}, {days} days overdue",
    dep_in: "{period} is in",
    dep_next: "{period}, due {date}",
    dep_rejections: "Recently refused rows",
    dep_no_rejections: "No row has been refused.",
    dep_row: "row {n}",
    dep_line: "line {n} of the file",
    dep_feeds: "Our feeds",
    dep_no_feeds: "No collector (pull, MQTT, NATS) is configured for this department.",
    dep_feed_ok: "Healthy",
    dep_feed_failing: "Failing",
    dep_feed_never_run: "Not run yet",
    dep_feed_success: "last success {at}",
    dep_pushes: "Recent pushes",
    dep_no_pushes: "This server has taken no push from this department since it started.",
    dep_entry: "Enter a figure",
    dep_f_indicator: "Indicator",
    dep_f_unit: "Unit",
    dep_f_period: "Period",
    dep_f_value: "Value",
    dep_f_decimal: "Decimal mark",
    dep_decimal_point: "Point (1234.5)",
    dep_decimal_comma: "Comma (1.234,5)",
    dep_f_hint: "A {periodicity} period, e.g. {example}. Plausible values: {lo}–{hi} {measure}.",
    dep_per_yearly: "yearly",
    dep_per_quarterly: "quarterly",
    dep_per_monthly: "monthly",
    dep_per_daily: "daily",
    dep_preview: "Check first",
    dep_submit: "Submit",
    dep_checking: "Checking…",
    dep_valid: "Valid: press «Submit» to store it.",
    dep_stored: "Stored.",
    dep_duplicate: "Same as the stored figure: nothing changed.",
    dep_receipt: "Receipt: revision {revision}, stored {at}",
    dep_range: "The indicator's plausible range: {lo}–{hi} {measure}.",
    dep_upload: "Upload a CSV file",
    dep_u_file: "CSV file (UTF-8)",
    dep_u_hint: "The first line names the columns:",
    dep_u_xlsx: "Excel files (XLSX) are not read directly: save as «CSV UTF-8» and upload that.",
    dep_u_check: "Check the file",
    dep_u_send: "Send the file",
    dep_u_none: "No file chosen.",
    dep_u_preview: "Checked: {accepted} valid rows, {rejected} refused. Nothing stored yet.",
    dep_u_done: "Sent: {accepted} rows stored, {duplicates} duplicates, {rejected} refused.",
    reject_malformed_row: "The row cannot be read",
    reject_missing_field: "A required field is missing",
    reject_unknown_indicator: "No such indicator in the catalogue",
    reject_unknown_unit: "No such unit in the catalogue",
    reject_unit_not_reporting: "This indicator takes no figures from that unit",
    reject_invalid_period: "The period is not valid",
    reject_period_mismatch: "The period does not match the indicator's periodicity",
    reject_period_in_future: "The period has not ended yet",
    reject_invalid_value: "The value is not a number",
    reject_ambiguous_number: "A number with a comma is ambiguous: choose the comma as decimal mark, or write a point",
    reject_value_not_finite: "The value is not finite",
    reject_value_out_of_range: "The value is outside the indicator's plausible range",
    reject_field_too_long: "A field is too long",
    reject_invalid_text: "The text holds characters that are not allowed",
    reject_invalid_reported_at: "The publication time is not valid",
    reject_reported_at_in_future: "The publication time is in the future",
    reject_reported_at_before_period: "The publication time is before the period starts",
    reject_reported_at_too_old: "The publication time is too far back",
    reject_foreign_indicators: "The indicator belongs to another department",
    reject_forbidden: "This token may not send figures",
    reject_invalid_field: "The request has an invalid field",
    reject_malformed_json: "The body is not well-formed",
    reject_too_many_rows: "Too many rows for one request: split the file",
    reject_payload_too_large: "The file is too large",
    reject_other: "Refused ({code})",
    state_preliminary: "preliminary",
    state_verified: "verified",
    state_official: "official",
    state_hint: "Not yet official; reports read official figures only",
    ind_state: "Figure",
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
