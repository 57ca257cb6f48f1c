-- wrk script: GET the portal front page as a logged-in resident (COOKIE). Every 200 counts;
-- a response without the resident's notices (a visitor page or a login redirect) is an error.
wrk.method = "GET"
wrk.headers["Cookie"] = os.getenv("COOKIE")
marker = os.getenv("MARKER")
wrong = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, marker, 1, true) then
    wrong = wrong + 1
  end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wrong") end
  io.write(string.format(
    "SUMMARY rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx3xx=%d sockerr=%d wrong=%d\n",
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, w))
end
