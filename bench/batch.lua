-- wrk script: a batch of single-use requests (bench/facade.py), each sent once: a POST to
-- the URL's path of each line of the file $BODIES (form-encoded). Once every line is sent,
-- a connection stays idle; the last answer stops the thread and ends the measurement
-- (the first request sent to the last answer, on the monotonic clock), and says so on
-- stdout (bench/facade.py then interrupts wrk instead of waiting for -d to pass). $EXPECT is the
-- status counted as expected; with $ANSWERS set, the bodies of those answers go there.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local bodies = {}
for line in io.lines(os.getenv("BODIES")) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local expect = tonumber(os.getenv("EXPECT") or "200")
local answers_path = os.getenv("ANSWERS")
local answers = nil
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local sent, answered, expected = 0, 0, 0
local statuses = {}
started, finished = nil, nil

local checked = false

function request()
  if not checked then
    -- wrk's first call (script_verify_request, before the run) only parses the request:
    -- nothing is sent, so nothing is used up. One thread (-t1): it is called once.
    checked = true
    return wrk.format("POST", nil, headers, bodies[1])
  end
  if sent == #bodies then
    return "" -- nothing left: the connection writes nothing and waits
  end
  sent = sent + 1
  if not started then started = now() end
  return wrk.format("POST", nil, headers, bodies[sent])
end

function response(status, _, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status == expect then
    expected = expected + 1
    if answers_path then
      answers = answers or io.open(answers_path, "w")
      answers:write(body, "\n")
    end
  end
  if answered == #bodies then
    finished = now()
    io.write("batch finished\n") -- the caller reads Envoy's CPU time now and ends wrk
    io.stdout:flush()
    if answers then answers:close() end
    local parts = {}
    for s, n in pairs(statuses) do parts[#parts + 1] = s .. "=" .. n end
    table.sort(parts)
    summary = string.format("%d answered in %.6f s, %d as expected, statuses %s",
      answered, finished - started, expected, table.concat(parts, " "))
    wrk.thread:stop()
  end
end

function done(_, latency, _)
  for _, t in ipairs(threads) do
    local s = t:get("summary")
    if s then io.write("batch: ", s, "\n") end
  end
  for _, p in ipairs({ 50, 99 }) do
    io.write(string.format("batch p%d: %d us\n", p, latency:percentile(p)))
  end
end
