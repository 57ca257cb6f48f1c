-- wrk script: authorization-code rounds for an already logged-in session (ops/bench/oidc.sh).
-- Per thread, a small state machine over wrk's request()/response() hooks: every 303 whose
-- Location carries code= queues the code; request() sends a token request (POST, HTTP Basic
-- client auth, PKCE verifier) for a queued code if there is one, else a new authorize request
-- (GET, session cookie, fixed S256 challenge). wrk does not say which connection a response
-- belongs to, so the queue is per thread: any connection of the thread may redeem a code.
-- A round = one authorize (303 + code) and one token request (200 with access and ID token).
-- Environment: AUTH_PATH (path?query of the authorize request), TOKEN_PATH, COOKIE (Cookie header
-- value), AUTH_B64 (base64 "id:secret"), VERIFIER (PKCE code_verifier), REDIRECT_URI (encoded).
-- Prints one line:
--   SUMMARY rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… non2xx3xx=… sockerr=…
--           rounds=… rounds_per_s=… codes=… bad_authorize=… bad_token=…
-- and one FAIL line per kind of failure seen (status and a sample Location or body).

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

local auth_req, token_path, token_headers, token_body_tail
local codes, head, tail = {}, 1, 0
rounds, issued, bad_authorize, bad_token, fail_sample = 0, 0, 0, 0, ""

function init(args)
  local function need(name)
    local v = os.getenv(name)
    if not v or v == "" then error(name .. " is not set") end
    return v
  end
  auth_req = wrk.format("GET", need("AUTH_PATH"), {
    ["Host"] = wrk.headers["Host"], ["Cookie"] = need("COOKIE"),
  })
  token_path = need("TOKEN_PATH")
  token_headers = {
    ["Host"] = wrk.headers["Host"],
    ["Authorization"] = "Basic " .. need("AUTH_B64"),
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  token_body_tail = "&redirect_uri=" .. need("REDIRECT_URI") .. "&code_verifier=" .. need("VERIFIER")
end

function request()
  if head <= tail then
    local code = codes[head]
    codes[head] = nil
    head = head + 1
    return wrk.format("POST", token_path, token_headers,
      "grant_type=authorization_code&code=" .. code .. token_body_tail)
  end
  return auth_req
end

local seen = {}
local function note(status, what) -- keeps one sample per status and kind (first 24 characters)
  local key = status .. what:sub(1, 24)
  if not seen[key] and #fail_sample < 1000 then
    seen[key] = true
    fail_sample = fail_sample .. string.format("FAIL status=%d %s\n", status, what:sub(1, 200))
  end
end

function response(status, headers, body)
  local location = headers["Location"] or headers["location"]
  if location then
    local code = location:match("[?&]code=([^&#]+)")
    if code and status == 303 then
      issued = issued + 1
      tail = tail + 1
      codes[tail] = code
    else
      bad_authorize = bad_authorize + 1
      note(status, "authorize location=" .. location)
    end
  elseif status == 200 and body:find('"id_token"', 1, true) and body:find('"access_token"', 1, true) then
    rounds = rounds + 1
  else
    -- A token error (JSON) or an authorize error page (HTML): both are failures of the round.
    if body:match("^%s*{") then bad_token = bad_token + 1 else bad_authorize = bad_authorize + 1 end
    note(status, "body=" .. body:gsub("%s+", " "))
  end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local r, c, ba, bt, samples = 0, 0, 0, 0, {}
  for _, t in ipairs(threads) do
    r = r + t:get("rounds"); c = c + t:get("issued")
    ba = ba + t:get("bad_authorize"); bt = bt + t:get("bad_token")
    for line in (t:get("fail_sample") or ""):gmatch("[^\n]+") do
      local key = line:sub(1, 40)
      if not samples[key] then samples[key] = true; samples[#samples + 1] = line .. "\n" end
    end
  end
  io.write(string.format(
    "SUMMARY rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx3xx=%d sockerr=%d"
      .. " rounds=%d rounds_per_s=%.1f codes=%d bad_authorize=%d bad_token=%d\n",
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, r, r / s, c, ba, bt))
  io.write(table.concat(samples))
end
