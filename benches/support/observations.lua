-- wrk script for benches/core.rs: every request POSTs a batch of new observations.
--
--   wrk -t T -c C -d 10s -s observations.lua URL -- T FIRST PER_REQUEST FIRST_DAY UNITS INDICATORS
--
-- Rows are numbered as benches/core.rs numbers them (day by day, every series of that day):
-- request n of thread t carries rows FIRST + (n * T + t) * PER_REQUEST onwards, so no two
-- requests share a row and every row is new. FIRST_DAY is the day of row 0 in days since
-- 1970-01-01; UNITS and INDICATORS are comma-separated codes. `setup` runs for each thread
-- before its `init`, so `id` (0-based) is set by then. The token is read from
-- KTXH_BENCH_TOKEN. `done` prints one line the benchmark reads.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function split(list)
  local out = {}
  for code in string.gmatch(list, "[^,]+") do
    out[#out + 1] = code
  end
  return out
end

function init(args)
  thread_count = tonumber(args[1])
  first = tonumber(args[2])
  per_request = tonumber(args[3])
  first_day = tonumber(args[4])
  units = split(args[5])
  indicators = split(args[6])
  series = #units * #indicators
  sent = 0
  day_text = {}
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("KTXH_BENCH_TOKEN")
end

function request()
  local base = first + (sent * thread_count + id) * per_request
  sent = sent + 1
  local rows = {}
  for k = 0, per_request - 1 do
    local i = base + k
    local s = i % series
    local d = math.floor(i / series)
    local day = day_text[d]
    if day == nil then
      day = os.date("!%Y-%m-%d", (first_day + d) * 86400)
      day_text[d] = day
    end
    rows[k + 1] = string.format(
      '{"indicator":"%s","unit":"%s","period":"%s","value":%d}',
      indicators[math.floor(s / #units) + 1], units[s % #units + 1], day, (i * 7) % 40)
  end
  return wrk.format(nil, nil, nil, '{"observations":[' .. table.concat(rows, ",") .. "]}")
end

function done(summary, latency, requests)
  local sent = 0
  for _, thread in ipairs(threads) do
    sent = math.max(sent, tonumber(thread:get("sent")) or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    "ktxh-wrk completed=%d most_sent_by_a_thread=%d duration_us=%d status_errors=%d " ..
    "socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, sent, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
