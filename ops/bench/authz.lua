-- wrk script: POST /api/v1/authz/check for random people of the seeded register (ops/bench/authz.sh).
-- Environment: TOKEN (bearer access token with authz:check), REQUESTS (the request file of
-- authz_seed.py: USER_ID <TAB> held permissions <TAB> one permission not held), ALLOW_SHARE
-- (share of checks asking about a held permission, default 0.9), MODE:
--   random   a random person of this thread's half (threads split the people by line number, so
--            "new" — first asked about in this run — is exact), a held permission with
--            probability ALLOW_SHARE, else the one not held;
--   walk     every person of this thread's half in file order, held permissions only (fills the
--            server's index; walked=N: the first N people of the file were all asked about);
--   token    the same bearer check but a permission naming another service: 400 after the token
--            is verified, before any access-rights work (the API's own cost);
--   healthz  GET /healthz (HTTP floor).
-- PEOPLE (default all): use only the first PEOPLE people of the file (each thread its half of
-- them), e.g. the people an earlier walk put into the index.
-- Every answer is checked against the seed: "allowed" must be true exactly for held permissions
-- (wrong=… counts the others; the answer names sub and permission, so no request bookkeeping).
-- Prints: SUMMARY rps=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… non2xx3xx=… sockerr=…
--         allowed=… denied=… allowed_pct=… wrong=… new=… walked=…

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

allowed, denied, wrong, new, walked, wrong_sample = 0, 0, 0, 0, 0, ""
local mode, share, people, held, deny, index, seen, pos = "random", 0.9, {}, {}, {}, {}, {}, 0
local path, headers, healthz_req

function init(args)
  mode = os.getenv("MODE") or "random"
  share = tonumber(os.getenv("ALLOW_SHARE") or "0.9")
  healthz_req = wrk.format("GET", "/healthz")
  if mode == "healthz" then return end
  local token = os.getenv("TOKEN") or error("TOKEN is not set")
  headers = { ["Host"] = wrk.headers["Host"], ["Authorization"] = "Bearer " .. token,
              ["Content-Type"] = "application/json" }
  path = "/api/v1/authz/check"
  local nthreads = tonumber(os.getenv("THREADS") or "2")
  local limit = tonumber(os.getenv("PEOPLE") or "0")
  local f = assert(io.open(os.getenv("REQUESTS") or error("REQUESTS is not set")))
  local line_no = 0
  for line in f:lines() do
    -- Every thread needs the whole map to check answers (a response is not tied to a request).
    local id, h, d = line:match("^([^\t]+)\t([^\t]*)\t([^\t]+)$")
    local list = {}
    for p in h:gmatch("%S+") do list[#list + 1] = p end
    local set = {}
    for _, p in ipairs(list) do set[p] = true end
    index[id] = { set = set, deny = d }
    if line_no % nthreads == tid and (limit <= 0 or line_no < limit) then
      people[#people + 1] = id; held[#people] = list; deny[#people] = d
    end
    line_no = line_no + 1
  end
  f:close()
  math.randomseed(os.time() * 7 + tid * 104729)
end

local function check(id, service, fn)
  return wrk.format("POST", path, headers,
    '{"sub":"' .. id .. '","service":"' .. service .. '","permission":"' .. fn .. '"}')
end

function request()
  if mode == "healthz" then return healthz_req end
  local i, p
  if mode == "walk" then
    pos = pos + 1
    i = (pos - 1) % #people + 1
    if pos <= #people then walked = walked + 1 end
  else
    i = math.random(#people)
    if not seen[i] then seen[i] = true; new = new + 1 end
  end
  local h = held[i]
  if mode == "walk" or (#h > 0 and math.random() < share) then
    p = h[math.random(#h)] or deny[i]
  else
    p = deny[i]
  end
  local service, fn = p:match("^([^:]+):(.+)$")
  if mode == "token" then
    return check(people[i], service, "other-" .. service .. ":" .. fn)
  end
  return check(people[i], service, fn)
end

local function note(what)
  if #wrong_sample < 600 then wrong_sample = wrong_sample .. "WRONG " .. what:sub(1, 200) .. "\n" end
end

function response(status, headers, body)
  if mode == "healthz" then return end
  if mode == "token" then
    if status ~= 400 then wrong = wrong + 1; note("status=" .. status .. " " .. body) end
    return
  end
  if status ~= 200 then return end -- counted by wrk as non-2xx
  local a = body:match('"allowed":%s*(%a+)')
  local sub = body:match('"sub":%s*"([^"]+)"')
  local perm = body:match('"permission":%s*"([^"]+)"')
  local want = sub and index[sub]
  if not (a and want and perm) then
    wrong = wrong + 1; note("unparsed " .. body); return
  end
  local should
  if want.set[perm] then should = "true" elseif perm == want.deny then should = "false" end
  if a == "true" then allowed = allowed + 1 else denied = denied + 1 end
  if a ~= should then wrong = wrong + 1; note("expected " .. tostring(should) .. ": " .. body) end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local al, de, wr, nw, wk, samples = 0, 0, 0, 0, nil, ""
  for _, t in ipairs(threads) do
    al = al + t:get("allowed"); de = de + t:get("denied"); wr = wr + t:get("wrong")
    nw = nw + t:get("new")
    -- walked: the first N people of the file are all in the index (each thread walks its half)
    local w = t:get("walked") * #threads
    if not wk or w < wk then wk = w end
    samples = samples .. (t:get("wrong_sample") or "")
  end
  io.write(string.format(
    "SUMMARY rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d non2xx3xx=%d sockerr=%d"
      .. " allowed=%d denied=%d allowed_pct=%.1f wrong=%d new=%d walked=%d\n",
    summary.requests / s, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, al, de, (al + de > 0) and 100 * al / (al + de) or 0,
    wr, nw, wk))
  io.write(samples)
end
