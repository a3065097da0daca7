// The Dapr JS SDK as an app behind the sidecar (DaprServer, HTTP), driven by tests/e2e/js_sdk.rs.
//
// Env: APP_PORT (where the app listens), DAPR_PORT (the sidecar), TOPIC.
// Subscribes to TOPIC on kafka-pubsub. An event whose data has `retry: true` is answered RETRY
// the first time and SUCCESS after; every other one SUCCESS. Prints one JSON line per call
// (`{"delivery": data, "status": "..."}`) and `{"ready": true}` once the SDK has started (it
// waits for the sidecar first). Runs until killed.
"use strict";
require("./loopback");
const { DaprServer, DaprPubSubStatusEnum, CommunicationProtocolEnum } = require("@dapr/dapr");

async function main() {
  const server = new DaprServer({
    serverHost: "127.0.0.1",
    serverPort: process.env.APP_PORT,
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    clientOptions: { daprHost: "127.0.0.1", daprPort: process.env.DAPR_PORT },
  });
  const retried = new Set();
  await server.pubsub.subscribe("kafka-pubsub", process.env.TOPIC, async (data, headers) => {
    let status = DaprPubSubStatusEnum.SUCCESS;
    if (data && data.retry && !retried.has(data.n)) {
      retried.add(data.n);
      status = DaprPubSubStatusEnum.RETRY;
    }
    console.log(JSON.stringify({ delivery: data, status, token: headers["dapr-api-token"] ?? null }));
    return status;
  });
  await server.start();
  console.log(JSON.stringify({ ready: true }));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
});
