-- wrk script for bench/callback_load.py: every request is a distinct, validly signed WeCom
-- callback read from a pre-generated file, and every answer must carry an encrypted reply.
--
-- The file (path in $SAFEBOT_BENCH_REQUESTS; wrk's -t in $SAFEBOT_BENCH_THREADS) has one
-- request per line:
--   <path?query> TAB <xml body>
-- Thread k of n takes lines k, k+n, k+2n, ... so no two threads (or connections) ever send the
-- same MsgId. A thread that runs out of lines counts "exhausted" and starts over; a repeat is
-- then answered with an empty 200 (a WeCom retry) and counted as an error, never as a success.
--
-- done() prints one line "SAFEBOT_BENCH {json}" that callback_load.py parses.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("thread_index", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   -- wrk runs setup(t) and then init() for one thread before it sets up the next, so the
   -- thread count comes from the environment rather than from counting setup() calls.
   local thread_count = tonumber(os.getenv("SAFEBOT_BENCH_THREADS") or "1")
   local path = os.getenv("SAFEBOT_BENCH_REQUESTS")
   local f = assert(io.open(path, "r"), "cannot open request file " .. tostring(path))
   local headers = {["Content-Type"] = "text/xml"}
   reqs = {}
   local i = 0
   for line in f:lines() do
      if i % thread_count == thread_index then
         local tab = string.find(line, "\t", 1, true)
         if tab then
            local target = string.sub(line, 1, tab - 1)
            local body = string.sub(line, tab + 1)
            reqs[#reqs + 1] = wrk.format("POST", target, headers, body)
         end
      end
      i = i + 1
   end
   f:close()
   nreqs = #reqs
   next_req = 1
   exhausted = 0
   ok = 0
   non200 = 0
   empty = 0
   bad_body = 0
end

function request()
   if next_req > nreqs then
      next_req = 1
      exhausted = exhausted + 1
   end
   local r = reqs[next_req]
   next_req = next_req + 1
   return r
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
   elseif body == nil or #body == 0 then
      empty = empty + 1
   elseif string.find(body, "<xml><Encrypt><![CDATA[", 1, true) ~= 1 then
      bad_body = bad_body + 1
   else
      ok = ok + 1
   end
end

function done(summary, latency, requests)
   local t = {ok = 0, non200 = 0, empty = 0, bad_body = 0, exhausted = 0, loaded = 0}
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do
         local v = thread:get(k == "loaded" and "nreqs" or k)
         t[k] = t[k] + (tonumber(v) or 0)
      end
   end
   local e = summary.errors
   io.write(string.format(
      'SAFEBOT_BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d, ' ..
      '"ok": %d, "non200": %d, "empty": %d, "bad_body": %d, "exhausted": %d, "loaded": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.timeout, e.status,
      t.ok, t.non200, t.empty, t.bad_body, t.exhausted, t.loaded))
end
