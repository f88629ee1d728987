-- wrk script for the Causeloop bench. Arguments (after `--`):
--   mode        get | post
--   token       bearer token ("-" for none)
--   max         stop each thread after this many responses (count bound; wrk's -d is the time bound)
--   path        request path; for get, "%s" in it is replaced by the next word from the words file
--   words       file of words, one a line ("-" for none): query words for get, title words for post
-- Prints one line "BENCHJSON {...}" from done() with the summary, percentiles and per-class status counts.

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } bench_timeval;
  int gettimeofday(bench_timeval *tv, void *tz);
]]
local function now_us()
  local tv = ffi.new("bench_timeval")
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000000 + tonumber(tv.tv_usec)
end

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

local mode, token, max_responses, path_template
local words = {}
local headers = {}
local severities = {"critical", "high", "high", "medium", "medium", "medium", "low", "low"}

responses = 0
s2xx = 0
s3xx = 0
s4xx = 0
s5xx = 0
pending = 0
started_us = 0
stopped_us = 0

local function read_words(file)
  local list = {}
  if file == nil or file == "-" then return list end
  for line in io.lines(file) do
    if #line > 0 then table.insert(list, line) end
  end
  return list
end

function init(args)
  mode = args[1]
  token = args[2]
  max_responses = tonumber(args[3])
  path_template = args[4]
  words = read_words(args[5])
  started_us = now_us()
  math.randomseed(os.time() * 1000 + (tid or 0))
  if token ~= nil and token ~= "-" then
    headers["Authorization"] = "Bearer " .. token
  end
  if mode == "post" then
    headers["Content-Type"] = "application/json"
  end
end

local function word()
  return words[math.random(#words)]
end

local counter = 0

function request()
  counter = counter + 1
  if mode == "post" then
    local title = word() .. " " .. word() .. " " .. word() .. " " .. word() .. " " .. word()
    local body = '{"title":"' .. title .. ' #' .. tid .. "-" .. counter .. '","severity":"'
      .. severities[math.random(#severities)] .. '","body":"' .. word() .. " " .. word() .. " " .. word()
      .. " " .. word() .. " " .. word() .. " " .. word() .. '"}'
    return wrk.format("POST", path_template, headers, body)
  end
  local path = path_template
  if #words > 0 then
    path = string.gsub(path_template, "%%s", word())
  end
  return wrk.format("GET", path, headers, nil)
end

function response(status, hdrs, body)
  responses = responses + 1
  if status < 300 then s2xx = s2xx + 1
  elseif status < 400 then s3xx = s3xx + 1
  elseif status < 500 then s4xx = s4xx + 1
  else s5xx = s5xx + 1 end
  if hdrs["X-Causeloop-Consistency"] ~= nil or hdrs["x-causeloop-consistency"] ~= nil then
    pending = pending + 1
  end
  if responses >= max_responses and stopped_us == 0 then
    stopped_us = now_us()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local totals = {responses = 0, s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, pending = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  -- A thread that hit the count bound stopped early: measure the run from the first start to the last stop.
  local first_start, last_end, bounded = nil, 0, 0
  for _, thread in ipairs(threads) do
    local started = thread:get("started_us")
    local stopped = thread:get("stopped_us")
    if first_start == nil or started < first_start then first_start = started end
    if stopped ~= 0 then bounded = 1 else stopped = started + summary.duration end
    if stopped > last_end then last_end = stopped end
  end
  local duration = summary.duration
  if bounded == 1 then duration = last_end - first_start end
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d},'
      .. '"responses":%d,"s2xx":%d,"s3xx":%d,"s4xx":%d,"s5xx":%d,"pending":%d,"count_bounded":%d}',
    summary.requests, duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9),
    totals.responses, totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx, totals.pending, bounded)
  io.write("BENCHJSON " .. out .. "\n")
end
