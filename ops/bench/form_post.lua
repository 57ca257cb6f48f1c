-- wrk script: POST one form body again and again, with HTTP Basic client authentication when
-- AUTH_B64 is set (base64 of "client_id:secret"). Used for the token endpoints of oidc.sh.
--   BODY (default: a client_credentials grant for api:read)   AUTH_B64 (optional)
-- Prints one line: SUMMARY rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… non2xx3xx=… sockerr=…
wrk.method = "POST"
wrk.body = os.getenv("BODY") or "grant_type=client_credentials&scope=api:read"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local basic = os.getenv("AUTH_B64")
if basic ~= nil and basic ~= "" then
  wrk.headers["Authorization"] = "Basic " .. basic
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local err = summary.errors
  io.write(string.format(
    "SUMMARY rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx3xx=%d sockerr=%d\n",
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, err.status,
    err.connect + err.read + err.write + err.timeout))
end
