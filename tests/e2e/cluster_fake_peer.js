// A stand-in for another cluster node, for bad-input tests: on one
// namespace's channel (the @socket.io/postgres-adapter protocol that
// spaces/cluster.c speaks) it sends heartbeats, so the real nodes count it,
// and answers every fetchSockets request with the sockets given, as they
// are (malformed ones included).
//
//   node tests/e2e/cluster_fake_peer.js DATABASE_URL NSP UID SOCKETS_TEXT
//
// SOCKETS_TEXT is spliced into the answer as it is: it need not be JSON.
//
// Prints "ready" once it listens and has said hello, then "answered RID"
// for every request it answers.
"use strict";

const path = require("node:path");
const { Client } = require(path.join(__dirname, "..", "node_modules", "pg"));

const [url, nsp, UID, socketsJson] = process.argv.slice(2);
const CHANNEL = `socket.io#${nsp}`;
const HEARTBEAT_FIRST = 1;
const HEARTBEAT = 2;
const FETCH_SOCKETS = 7;
const FETCH_SOCKETS_RESPONSE = 8;

async function main() {
  const db = new Client({ connectionString: url });
  await db.connect();
  const notify = (msg) => db.query("SELECT pg_notify($1, $2)", [CHANNEL, JSON.stringify(msg)]);
  db.on("notification", async (n) => {
    let msg;
    try {
      msg = JSON.parse(n.payload);
    } catch (_) {
      return;
    }
    if (msg.uid === UID || msg.type !== FETCH_SOCKETS || !msg.data) return;
    const requestId = msg.data.requestId;
    // The sockets are spliced in as text: they may be any JSON at all.
    const text = `{"uid":"${UID}","nsp":${JSON.stringify(nsp)},"type":${FETCH_SOCKETS_RESPONSE},` +
      `"data":{"requestId":${JSON.stringify(requestId)},"sockets":${socketsJson}}}`;
    await db.query("SELECT pg_notify($1, $2)", [CHANNEL, text]);
    console.log(`answered ${requestId}`);
  });
  await db.query(`LISTEN "${CHANNEL.replace(/"/g, '""')}"`);
  await notify({ uid: UID, nsp, type: HEARTBEAT_FIRST });
  setInterval(() => notify({ uid: UID, nsp, type: HEARTBEAT }).catch(() => process.exit(1)), 1000);
  console.log("ready");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
