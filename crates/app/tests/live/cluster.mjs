// Two Switchboard instances sharing one Redis, driven by the official client.
//
//   node cluster.mjs <base-A> <base-B> <token> <events-X-will-see>
//
// X stays connected to instance A (the dashboard). Y connects to instance B,
// drops after 5 events and resumes on instance A with its last sequence.
// Prints {"ready": true} once both are connected, then {"result": {...}}.
import { io } from "socket.io-client";

const [baseA, baseB, token, expectedRaw] = process.argv.slice(2);
const expected = Number(expectedRaw);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (m) => { out({ error: m }); process.exit(1); };
let step = "start";
let state = () => ({});
setTimeout(() => fail(`timed out at step "${step}": ${JSON.stringify(state())}`), 120_000);

function connect(base, auth) {
  const s = io(base, { auth, transports: ["websocket"], reconnection: false, forceNew: true, timeout: 60_000 });
  s.on("connect_error", (e) => fail(`connect_error at step "${step}": ${e.message}`));
  return s;
}
const once = (socket, event) => new Promise((resolve) => socket.once(event, resolve));
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const lastSeq = (evs) => (evs.length ? evs[evs.length - 1].seq : 0);
const row = (e) => [e.stream, e.seq, e.kind, e.data.id, e.data.status];

step = "connect X to A";
const x = connect(baseA, { token });
const xEvents = [];
x.on("event", (e) => xEvents.push(e));
await once(x, "connect");

step = "connect Y to B";
const yEvents = [];
let y = connect(baseB, { token });
y.on("event", (e) => yEvents.push(e));
await once(y, "connect");
state = () => ({ x: xEvents.length, y: yEvents.length, step });
out({ ready: true });

step = "Y receives 5";
while (yEvents.length < 5) await wait(5);
y.close();
const dropAt = lastSeq(yEvents);
await wait(300); // events keep flowing while Y is away

step = "resume Y on A";
y = connect(baseA, { token, after: { dashboard: dropAt } });
y.on("event", (e) => yEvents.push(e));
const resumed = once(y, "subscribed");
await once(y, "connect");
const ack = await resumed;

step = "receive all";
while (xEvents.length < expected || lastSeq(yEvents) < lastSeq(xEvents)) await wait(10);
await wait(300); // a duplicate would arrive now
out({ result: { x: xEvents.map(row), y: yEvents.map(row), drop_at: dropAt, resume: ack } });
x.close(); y.close();
process.exit(0);
