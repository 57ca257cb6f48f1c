-- wrk script: GET the URL given to wrk (discovery, JWKS…) and print the same SUMMARY line as
-- form_post.lua: SUMMARY rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… non2xx3xx=… sockerr=…
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local err = summary.errors
  io.write(string.format(
    "SUMMARY rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx3xx=%d sockerr=%d\n",
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, err.status,
    err.connect + err.read + err.write + err.timeout))
end
