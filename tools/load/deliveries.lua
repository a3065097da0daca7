-- wrk script: single CloudEvent deliveries to /events/task-events, like daprd sends them.
-- 80% task.completed (DAILY, 1.0 shape as tests/src/events.rs), 20% task.updated; every event
-- has its own event_id and task_id (thread number + counter), so no delivery is a duplicate of
-- another and no two completions make the same next task.
-- With the script argument `publish` (`wrk ... -s deliveries.lua URL -- publish`) the same task
-- events are published through the embedded sidecar's publish API instead, keyed by user.
-- With `publish-bulk N` each request is one bulk publish (`/v1.0-alpha1/publish/bulk/...`) of N
-- such events, each with its user as partition key.
-- With `bulk N` each request is one bulk delivery (docs/dapr-contract.md §4) of N such events,
-- entry ids "0".."N-1", as daprd sends a batch from one partition.

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  not_success = 0
  publish = args[1] == "publish"
  bulk = args[1] == "bulk" and tonumber(args[2]) or nil
  publish_bulk = args[1] == "publish-bulk" and tonumber(args[2]) or nil
  publish = publish or publish_bulk ~= nil
  wrk.method = "POST"
  wrk.path = "/events/task-events"
  wrk.headers["Content-Type"] = "application/cloudevents+json"
end

local event = '{"event_id":"evt-%s","event_type":"%s","event_version":"1.0","task_id":%d,'
  .. '"user_id":"user-%d","timestamp":"2025-12-29T10:00:00Z","payload":{"recurring_pattern":"DAILY",'
  .. '"due_date":"2025-12-29T09:00:00Z","completed_at":"2025-12-29T10:00:00Z","title":"Water the plants"}}'
local cloud_event = '{"specversion":"1.0","id":"ce-%s","source":"load","type":"com.dapr.event.sent",'
  .. '"datacontenttype":"application/json","pubsubname":"kafka-pubsub","topic":"task-events",'
  .. '"data":%s}'

local function delivery()
  n = n + 1
  local id = tid .. "-" .. n
  local kind = (n % 5 == 0) and "task.updated" or "task.completed"
  local data = string.format(event, id, kind, 1000 + n + tid * 100000000, n % 7)
  return string.format(cloud_event, id, data)
end

local function published_event()
  n = n + 1
  local id = tid .. "-" .. n
  local kind = (n % 5 == 0) and "task.updated" or "task.completed"
  local user = n % 64
  return user, string.format(event, id, kind, 1000 + n + tid * 100000000, user)
end

function request()
  if publish_bulk then
    local entries = {}
    for i = 1, publish_bulk do
      local user, body = published_event()
      entries[i] = string.format('{"entryId":"%d","contentType":"application/json",'
        .. '"metadata":{"partitionKey":"user-%d"},"event":%s}', i - 1, user, body)
    end
    return wrk.format(nil, "/v1.0-alpha1/publish/bulk/kafka-pubsub/task-events",
      {["Content-Type"] = "application/json"}, "[" .. table.concat(entries, ",") .. "]")
  end
  if bulk then
    local entries = {}
    for i = 1, bulk do
      entries[i] = string.format('{"entryId":"%d","contentType":"application/cloudevents+json",'
        .. '"metadata":{},"event":%s}', i - 1, delivery())
    end
    local body = '{"id":"load","pubsubname":"kafka-pubsub","topic":"task-events",'
      .. '"type":"com.dapr.event.sent.bulk","entries":[' .. table.concat(entries, ",") .. ']}'
    return wrk.format(nil, nil, {["Content-Type"] = "application/json"}, body)
  end
  if publish then
    local user, body = published_event()
    local path = "/v1.0/publish/kafka-pubsub/task-events?metadata.partitionKey=user-" .. user
    return wrk.format(nil, path, {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format(nil, nil, nil, delivery())
end

-- A delivery is answered 200 with {"status": ...}, a batch with a SUCCESS per entry, a
-- publish 204; anything else is counted.
function response(status, headers, body)
  local ok = publish and status == 204
    or (bulk and status == 200 and not string.find(body, "RETRY", 1, true)
      and not string.find(body, "DROP", 1, true))
    or (not bulk and status == 200 and string.find(body, "SUCCESS", 1, true))
  if not ok then
    not_success = not_success + 1
  end
end

-- One line wrk's caller can parse: requests, errors, latency percentiles in microseconds.
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("not_success")
  end
  io.write(string.format("RESULT requests=%d errors=%d not_success=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, errors, failed, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max))
end
