-- wrk script for ops/bench/saml.sh: SAML Web SSO with live sessions, session cookies rotating.
-- Environment:
--   COOKIE_FILE  one Cookie header value a line (one live session each); every request takes the
--                next one, round-robin per thread
--   SSO_PATH     a fixed path?query (IdP-initiated SSO), or
--   URLS         a prefix of per-thread files URLS.0, URLS.1, … (ops/bench/saml_requests.py): one
--                request path a line, each sent once (SP-initiated SSO, every AuthnRequest with
--                its own ID). When a thread's file runs out its last path is sent again and
--                counted as "exhausted": such a run is not valid.
-- Every answer must be a 200 carrying a SAMLResponse; anything else is counted (and the first of
-- each kind kept as a sample).
-- Prints one line:
--   SUMMARY rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… non2xx3xx=… sockerr=…
--           ok=… non200=… no_saml_response=… exhausted=…
-- and one FAIL line per kind of failure seen (status and the start of the body or Location).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

local cookies, ci, fixed, urls, last = {}, 0, nil, nil, nil
ok, non200, no_saml, exhausted, fail_sample = 0, 0, 0, 0, ""

function init(args)
  local cf = os.getenv("COOKIE_FILE") or error("COOKIE_FILE is not set")
  for l in io.lines(cf) do if #l > 0 then cookies[#cookies + 1] = l end end
  if #cookies == 0 then error("no cookies in " .. cf) end
  ci = (tid * 7) % #cookies -- threads start at different sessions
  local u = os.getenv("URLS")
  if u and #u > 0 then
    urls = assert(io.open(u .. "." .. tid, "r"))
  else
    fixed = os.getenv("SSO_PATH") or error("SSO_PATH or URLS must be set")
  end
end

function request()
  ci = ci % #cookies + 1
  local path = fixed
  if urls then
    path = urls:read("*l")
    if path then last = path else path = last; exhausted = exhausted + 1 end
  end
  return wrk.format("GET", path, { ["Cookie"] = cookies[ci] })
end

local seen = {}
local function note(status, what)
  local key = status .. what:sub(1, 40)
  if not seen[key] and #fail_sample < 2000 then
    seen[key] = true
    fail_sample = fail_sample .. string.format("FAIL status=%d %s\n", status, what:sub(1, 300))
  end
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    local loc = headers["Location"] or headers["location"]
    note(status, loc and ("location=" .. loc) or ("body=" .. body:gsub("%s+", " ")))
  elseif not body:find("SAMLResponse", 1, true) then
    no_saml = no_saml + 1
    note(status, "no SAMLResponse: body=" .. body:gsub("%s+", " "))
  else
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local o, n, ns, ex, samples = 0, 0, 0, 0, {}
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); n = n + t:get("non200"); ns = ns + t:get("no_saml")
    ex = ex + t:get("exhausted")
    for line in (t:get("fail_sample") or ""):gmatch("[^\n]+") do
      local key = line:sub(1, 60)
      if not samples[key] then samples[key] = true; samples[#samples + 1] = line .. "\n" end
    end
  end
  io.write(string.format(
    "SUMMARY rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx3xx=%d sockerr=%d"
      .. " ok=%d non200=%d no_saml_response=%d exhausted=%d\n",
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, o, n, ns, ex))
  io.write(table.concat(samples))
end
