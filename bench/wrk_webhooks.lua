-- Webhook deliveries for bench/webhooks.py: wrk POSTs pre-signed events read from a file.
--
-- Usage: wrk -t<T> ... -s bench/wrk_webhooks.lua <url> -- <events file> <T>
-- The file holds two lines per event: the Stripe-Signature header, then the JSON body. Thread k
-- of T sends events k, k+T, k+2T, ... in order and starts over when its share runs out
-- (counted as "wrapped": for fresh events that means the pool was too small). Each thread
-- counts what it sent and how the server answered; done() prints wrk's summary and the counts
-- as one JSON line (latencies in microseconds).

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  local file = assert(io.open(path, "rb"))
  reqs = {}
  local k = 0
  while true do
    local signature = file:read("*l")
    if not signature then break end
    local body = assert(file:read("*l"), "events file: a signature line without its body")
    if k % nthreads == tid then
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json; charset=utf-8",
        ["Stripe-Signature"] = signature,
        ["User-Agent"] = "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
      }, body)
    end
    k = k + 1
  end
  file:close()
  assert(#reqs > 0, "events file: no events for thread " .. tid)
  idx, sent, wrapped = 0, 0, 0
  fresh, duplicate, empty, other = 0, 0, 0, 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    idx, wrapped = 1, wrapped + 1
  end
  sent = sent + 1
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 then
    other = other + 1
  elseif body:find('"duplicate":%s*false') then
    fresh = fresh + 1
  elseif body:find('"duplicate":%s*true') then
    duplicate = duplicate + 1
  else
    empty = empty + 1
  end
end

done = function(summary, latency, requests)
  local c = {sent = 0, wrapped = 0, fresh = 0, duplicate = 0, empty = 0, other = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(c) do
      c[name] = c[name] + thread:get(name)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"p50_us": %.0f, "p90_us": %.0f, "p99_us": %.0f, "mean_us": %.1f, "max_us": %.0f, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"sent": %d, "wrapped": %d, "answers": {"fresh": %d, "duplicate": %d, "empty": %d, ' ..
    '"other": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max, e.connect, e.read, e.write, e.status, e.timeout,
    c.sent, c.wrapped, c.fresh, c.duplicate, c.empty, c.other))
end
