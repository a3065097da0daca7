// The Dapr JS SDK as a client of the sidecar (HTTP protocol), driven by tests/e2e/js_sdk.rs.
//
// Env: DAPR_PORT (the sidecar's HTTP port), DAPR_API_TOKEN (optional), TOPIC, BULK_TOPIC.
// Does: metadata, publish, bulk publish (the SDK sends `entryID`), state save + get; prints one
// JSON line `{"result": {...}}` with what each call returned, and exits 0. Any thrown error is
// printed as `{"error": "..."}` with exit code 1. The Rust test checks the sidecar's side.
"use strict";
const { DaprClient, CommunicationProtocolEnum } = require("@dapr/dapr");

async function main() {
  const client = new DaprClient({
    daprHost: "127.0.0.1",
    daprPort: process.env.DAPR_PORT,
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    daprApiToken: process.env.DAPR_API_TOKEN || undefined,
  });
  // Waits for the sidecar the way every SDK app does (polls GET /v1.0/metadata).
  await client.start();
  const metadata = await client.metadata.get();
  const published = await client.pubsub.publish("kafka-pubsub", process.env.TOPIC, {
    kind: "single",
    n: 1,
  });
  const bulk = await client.pubsub.publishBulk("kafka-pubsub", process.env.BULK_TOPIC, [
    { kind: "bulk", n: 1 },
    { kind: "bulk", n: 2 },
    { entryID: "chosen-id", event: { kind: "bulk", n: 3 }, contentType: "application/json" },
  ]);
  const saved = await client.state.save("statestore", [
    { key: "sdk-key", value: { owner: "js-sdk", n: 7 } },
  ]);
  const got = await client.state.get("statestore", "sdk-key");
  const missing = await client.state.get("statestore", "no-such-key");
  await client.stop();
  const failed = bulk.failedMessages.map((f) => String(f.error));
  console.log(JSON.stringify({ result: { metadata, published, failed, saved, got, missing } }));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.log(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }));
    process.exit(1);
  },
);
