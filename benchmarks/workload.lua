-- wrk script for benchmarks/run.py: plays a plan file written by benchmarks/suite/wrk.py.
--
-- usage: wrk -t T -c C -d D -s workload.lua http://127.0.0.1:PORT -- PLANFILE
--
-- Plan, first line "requests": every further line is METHOD<TAB>PATH<TAB>BODY (BODY may be
-- empty). Each thread pre-formats every request once, then sends them round-robin, each
-- thread starting at its own offset. Nothing is built per request.
--
-- Plan, first line "replay": the second line is a path prefix ("/v1/conversations/"),
-- every further line a conversation id. Each thread must own exactly one connection
-- (-t C -c C): it replays what OpenAIConversationsSession.get_items() does, GET
-- .../items?order=asc, then ...&after=<last_id> until has_more is false, and moves on to
-- the next conversation. A replay counts when it ends with has_more false after a
-- non-error page; a non-200 page abandons the replay and counts as bad.
--
-- done() prints one line, "@@RESULT {json}", which the suite parses.

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local mode
local requests_ = {}
local count = 0
local index = 0
local prefix
local convs = {}
local conv_index = 0
local after = nil

-- Globals, so that done() can read them from every thread with thread:get().
replays = 0
replay_pages = 0
replay_bad = 0
page_count = 0

local function split_tab(line)
   local fields = {}
   local start = 1
   while true do
      local tab = string.find(line, "\t", start, true)
      if tab == nil then
         table.insert(fields, string.sub(line, start))
         return fields
      end
      table.insert(fields, string.sub(line, start, tab - 1))
      start = tab + 1
   end
end

function init(args)
   local file = assert(io.open(args[1], "r"))
   mode = file:read("*l")
   local thread_id = id or 1
   if mode == "replay" then
      prefix = file:read("*l")
      for line in file:lines() do
         if line ~= "" then
            table.insert(convs, line)
         end
      end
      conv_index = (thread_id - 1) % #convs
   else
      local json = { ["Content-Type"] = "application/json" }
      for line in file:lines() do
         if line ~= "" then
            local f = split_tab(line)
            local body = f[3]
            if body == nil or body == "" then
               table.insert(requests_, wrk.format(f[1], f[2]))
            else
               table.insert(requests_, wrk.format(f[1], f[2], json, body))
            end
         end
      end
      count = #requests_
      -- Spread the threads over the plan.
      index = ((thread_id - 1) * 7919) % count
      response = nil -- no per-response callback: wrk skips collecting bodies
   end
   file:close()
end

function request()
   if mode == "replay" then
      -- limit=20 said, not left to the server's default (OpenAI's is 20; SMG's is larger)
      local path = prefix .. convs[conv_index + 1] .. "/items?order=asc&limit=20"
      if after ~= nil then
         path = path .. "&after=" .. after
      end
      return wrk.format("GET", path)
   end
   index = index + 1
   if index > count then
      index = 1
   end
   return requests_[index]
end

local function next_conversation()
   after = nil
   page_count = 0
   conv_index = (conv_index + 1) % #convs
end

function response(status, headers, body)
   page_count = page_count + 1
   if status ~= 200 then
      replay_bad = replay_bad + 1
      next_conversation()
      return
   end
   -- Both servers end a page with ..."last_id":"...","has_more":...}: read the tail only.
   local tail = string.sub(body, -400)
   local last = string.match(tail, '"last_id":%s*"([^"]+)"')
   if last ~= nil and string.find(tail, '"has_more":%s*true') then
      after = last
      return
   end
   replays = replays + 1
   replay_pages = replay_pages + page_count -- pages of completed replays only
   next_conversation()
end

function done(summary, latency, requests)
   local r, p, b = 0, 0, 0
   for _, thread in ipairs(threads) do
      r = r + (thread:get("replays") or 0)
      p = p + (thread:get("replay_pages") or 0)
      b = b + (thread:get("replay_bad") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      '@@RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
         .. '"replays":%d,"replay_pages":%d,"replay_bad":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, r, p, b))
end
