-- wrk script: single CloudEvent deliveries to /events/task-events, like daprd sends them.
-- 80% task.completed (DAILY, 1.0 shape as tests/src/events.rs), 20% task.updated; every event
-- has its own event_id (thread number + counter), so no delivery is a duplicate of another.

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  not_success = 0
  wrk.method = "POST"
  wrk.path = "/events/task-events"
  wrk.headers["Content-Type"] = "application/cloudevents+json"
end

local template = '{"specversion":"1.0","id":"ce-%s","source":"load","type":"com.dapr.event.sent",'
  .. '"datacontenttype":"application/json","pubsubname":"kafka-pubsub","topic":"task-events",'
  .. '"data":{"event_id":"evt-%s","event_type":"%s","event_version":"1.0","task_id":%d,'
  .. '"user_id":"user-%d","timestamp":"2025-12-29T10:00:00Z","payload":{"recurring_pattern":"DAILY",'
  .. '"due_date":"2025-12-29T09:00:00Z","completed_at":"2025-12-29T10:00:00Z","title":"Water the plants"}}}'

function request()
  n = n + 1
  local id = tid .. "-" .. n
  local kind = (n % 5 == 0) and "task.updated" or "task.completed"
  local body = string.format(template, id, id, kind, 1000 + n, n % 7)
  return wrk.format(nil, nil, nil, body)
end

-- The host answers 200 with {"status": ...}; anything but SUCCESS is counted.
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "SUCCESS", 1, true) then
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
