// The live-feed fan-out benchmark's clients (`switchboard bench --suite live`).
//
//   node fanout.mjs <base-url> <token> <clients> <events-each>
//
// Opens <clients> official Socket.IO clients (the dashboard room), prints
// {"ready": true}, records when each client receives each call.updated
// event (wall clock, ms with fractions), and once every client has
// <events-each> events (or 120 s passed) prints
// {"events": {"<call_sid>|<status>": [receipt ms, …]}, "missing": n}.
import { io } from "socket.io-client";

const [base, token, clientsRaw, eachRaw] = process.argv.slice(2);
const clients = Number(clientsRaw);
const each = Number(eachRaw);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const now = () => performance.timeOrigin + performance.now();
const events = new Map();
const counts = new Array(clients).fill(0);
const sockets = [];
let connected = 0;
for (let i = 0; i < clients; i++) {
  const s = io(base, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true, timeout: 60_000 });
  s.on("connect_error", (e) => { out({ error: `client ${i}: ${e.message}` }); process.exit(1); });
  s.on("event", (e) => {
    if (e.kind !== "call.updated") return;
    const t = now();
    const key = `${e.data.call_sid}|${e.data.status}`;
    let a = events.get(key);
    if (!a) { a = []; events.set(key, a); }
    a.push(Math.round(t * 100) / 100);
    counts[i]++;
  });
  s.once("connect", () => { connected++; });
  sockets.push(s);
}
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
while (connected < clients) await wait(10);
out({ ready: true });
const deadline = Date.now() + 120_000;
while (counts.some((c) => c < each) && Date.now() < deadline) await wait(20);
const missing = counts.reduce((m, c) => m + Math.max(0, each - c), 0);
for (const s of sockets) s.close();
// A pipe takes big writes asynchronously: exit once this one is flushed.
process.stdout.write(JSON.stringify({ events: Object.fromEntries(events), missing }) + "\n", () => process.exit(0));
