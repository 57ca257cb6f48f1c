-- wrk script: concurrent booking attempts, POST /services/reservations/api/reservations
-- {"resource", "begins_at", "ends_at"} with a resident's bearer access token (scope reservations),
-- at random slots of the empty facility's pool (ops/bench/reservations.sh): many attempts meet a
-- slot someone already took.
-- Environment: TOKEN, SLOTS (the file of reservations_seed.py: "BEGINS END1 END2 END3" a line,
-- RFC 3339 UTC, ends of 1, 2 and 3 hours), RESOURCE (default bench-b), HOURS (default 1: every
-- booking one hour; 2 or 3: lengths drawn from 1…HOURS, so bookings also overlap partly, and
-- some run past closing time and get 422).
-- Answers: 201 booked, 409 the time is taken, 422 a rule refused it; anything else counts as
-- other (a run with any is invalid; a few are sampled).
-- Prints: SUMMARY rps=… mean_ms=… p50_ms=… p90_ms=… p99_ms=… max_ms=… reqs=… created=…
--         conflict=… rule=… other=… sockerr=… pool=…
--         FAIL … (up to 3 samples a thread)

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

created, conflict, rule, other, samples, pool = 0, 0, 0, 0, "", 0
local slots, headers, path, resource, hours = {}, nil, "/services/reservations/api/reservations", nil, 1

function init(args)
  resource = os.getenv("RESOURCE") or "bench-b"
  hours = tonumber(os.getenv("HOURS") or "1")
  local token = os.getenv("TOKEN") or error("TOKEN is not set")
  headers = { ["Host"] = wrk.headers["Host"], ["Authorization"] = "Bearer " .. token,
              ["Content-Type"] = "application/json" }
  local f = assert(io.open(os.getenv("SLOTS") or error("SLOTS is not set")))
  for line in f:lines() do
    local b, e1, e2, e3 = line:match("^(%S+) (%S+) (%S+) (%S+)$")
    if b then slots[#slots + 1] = { b, e1, e2, e3 } end
  end
  f:close()
  pool = #slots
  assert(pool > 0, "no slots in " .. os.getenv("SLOTS"))
  math.randomseed(os.time() * 7 + tid * 104729)
end

function request()
  local s = slots[math.random(pool)]
  local h = hours > 1 and math.random(hours) or 1
  return wrk.format("POST", path, headers,
    '{"resource":"' .. resource .. '","begins_at":"' .. s[1] .. '","ends_at":"' .. s[h + 1] .. '"}')
end

function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 409 then conflict = conflict + 1
  elseif status == 422 then rule = rule + 1
  else
    other = other + 1
    if #samples < 600 then
      samples = samples .. "FAIL status=" .. status .. " " .. (body or ""):gsub("%s+", " "):sub(1, 180) .. "\n"
    end
  end
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local cr, co, ru, ot, out = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    cr = cr + t:get("created"); co = co + t:get("conflict"); ru = ru + t:get("rule")
    ot = ot + t:get("other"); out = out .. (t:get("samples") or "")
    if pool == 0 then pool = t:get("pool") end
  end
  io.write(string.format(
    "SUMMARY rps=%.1f mean_ms=%.2f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f reqs=%d"
      .. " created=%d conflict=%d rule=%d other=%d sockerr=%d pool=%d\n",
    summary.requests / s, latency.mean / 1000, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.requests, cr, co, ru, ot, e.connect + e.read + e.write + e.timeout, pool))
  io.write(out)
end
