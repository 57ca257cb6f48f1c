-- wrk script: GET /services/reservations/api/resources/{RESOURCE}/availability?from=…&to=… (public,
-- no token) for random 7-day windows of the seeded period (ops/bench/reservations.sh).
-- Environment: WINDOWS (the file of reservations_seed.py: "FROM TO" a line, local dates, every
-- window fully booked), RESOURCE (default bench-a), EXPECT_TAKEN (slots marked taken in a fully
-- booked week, default 119 = 7 × 17), CHECK_EVERY (look into every Nth 200 answer, default 20:
-- it must name the resource and hold exactly EXPECT_TAKEN taken slots and no free one).
-- Every non-200 answer is counted (non200=…, a run with any is invalid) and a few are sampled.
-- Prints: SUMMARY rps=… mean_ms=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… non200=… sockerr=…
--         checked=… wrong=… windows=…
--         FAIL … (up to 3 samples a thread)

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

non200, checked, wrong, seen, samples, nwindows = 0, 0, 0, 0, "", 0
local paths = {}
local expect, every

function init(args)
  local resource = os.getenv("RESOURCE") or "bench-a"
  expect = tonumber(os.getenv("EXPECT_TAKEN") or "119")
  every = tonumber(os.getenv("CHECK_EVERY") or "20")
  local base = "/services/reservations/api/resources/" .. resource .. "/availability"
  local f = assert(io.open(os.getenv("WINDOWS") or error("WINDOWS is not set")))
  for line in f:lines() do
    local from, to = line:match("^(%S+) (%S+)$")
    if from then
      paths[#paths + 1] = wrk.format("GET", base .. "?from=" .. from .. "&to=" .. to)
    end
  end
  f:close()
  nwindows = #paths
  assert(nwindows > 0, "no windows in " .. os.getenv("WINDOWS"))
  math.randomseed(os.time() * 7 + tid * 104729)
end

function request()
  return paths[math.random(nwindows)]
end

local function note(what)
  if #samples < 600 then samples = samples .. "FAIL " .. what:gsub("%s+", " "):sub(1, 180) .. "\n" end
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    note("status=" .. status .. " " .. (body or ""))
    return
  end
  seen = seen + 1
  if every > 0 and seen % every == 0 then
    checked = checked + 1
    local _, taken = body:gsub('"status":"taken"', "")
    local _, free = body:gsub('"status":"free"', "")
    if taken ~= expect or free ~= 0 or not body:find('"resource":"', 1, true) then
      wrong = wrong + 1
      note("taken=" .. taken .. " free=" .. free .. " " .. body:sub(1, 120))
    end
  end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local n2, ck, wr, out = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    n2 = n2 + t:get("non200"); ck = ck + t:get("checked"); wr = wr + t:get("wrong")
    out = out .. (t:get("samples") or "")
    if nwindows == 0 then nwindows = t:get("nwindows") end
  end
  io.write(string.format(
    "SUMMARY rps=%.1f mean_ms=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d"
      .. " non200=%d sockerr=%d checked=%d wrong=%d windows=%d\n",
    summary.requests / s, latency.mean / 1000, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, n2, e.connect + e.read + e.write + e.timeout, ck, wr, nwindows))
  io.write(out)
end
