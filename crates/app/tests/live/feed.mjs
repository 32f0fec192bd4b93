// The official Socket.IO client against Switchboard's live feed.
//
//   node feed.mjs <base-url> <token> <dashboard-events-A-will-see> <call-id>
//
// Prints one JSON line per milestone on stdout:
//   {"refused": "<message>"}          a bad token is refused at connect
//   {"ready": true}                   clients connected and subscribed: start sending
//   {"result": {...}}                 the streams as each client saw them
// Client A stays connected (no subscribe: the dashboard room). Client B drops
// its connection after 5 events and comes back with `after: <last seq>`.
// Client C subscribes to one call's room.
import { io } from "socket.io-client";

const [base, token, expectedRaw, callId] = process.argv.slice(2);
const expected = Number(expectedRaw);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (m) => { out({ error: m }); process.exit(1); };
// Where the script is, so a timeout names the step it was stuck on.
let step = "start";
let state = () => ({});
// Generous: CI runs this beside the whole test suite on two cores.
setTimeout(() => fail(`timed out at step "${step}": ${JSON.stringify(state())}`), 120_000);

function connect(auth, expectRefusal = false) {
  const s = io(base, { auth, transports: ["websocket"], reconnection: false, forceNew: true, timeout: 60_000 });
  // A refused or failed connection would otherwise leave `once(s, "connect")` waiting forever.
  if (!expectRefusal) s.on("connect_error", (e) => fail(`connect_error at step "${step}": ${e.message}`));
  return s;
}

// `subscribe`, acknowledged; an unanswered one fails at once, naming the step.
const subscribe = (socket, req) =>
  socket.timeout(60_000).emitWithAck("subscribe", req).catch((e) => fail(`subscribe at step "${step}": ${e.message}`));

function once(socket, event) {
  return new Promise((resolve) => socket.once(event, resolve));
}

// 1. A bad token is refused.
{
  step = "refused";
  const bad = connect({ token: "not-a-token-not-a-token" }, true);
  const err = await once(bad, "connect_error");
  out({ refused: err.message });
  bad.close();
}

// 2. A: connected, subscribed to nothing → the dashboard.
step = "connect A";
const a = connect({ token });
const aEvents = [];
a.on("event", (e) => aEvents.push(e));
await once(a, "connect");

// C: one call's room (leaves the dashboard).
step = "connect C";
const c = connect({ token });
const cEvents = [];
c.on("event", (e) => cEvents.push(e));
await once(c, "connect");
step = "subscribe C";
const cAck = await subscribe(c, { room: `call:${callId}` });
if (!cAck.ok) fail(`subscribe call: ${JSON.stringify(cAck)}`);
const badAck = await subscribe(c, { room: "admin" });

// B: the dashboard, explicitly; drops after 5 events and resumes.
const bEvents = [];
let bAcks = [];
async function startB(after) {
  step = after === undefined ? "connect B" : "resume B";
  if (after === undefined) {
    const b = connect({ token });
    b.on("event", (e) => bEvents.push(e));
    await once(b, "connect");
    bAcks.push(await subscribe(b, { room: "dashboard" }));
    return b;
  }
  // Resume in the handshake: the missed events come first, in order.
  const b = connect({ token, after: { dashboard: after } });
  b.on("event", (e) => bEvents.push(e));
  const resumed = once(b, "subscribed");
  await once(b, "connect");
  bAcks.push(await resumed);
  // A late explicit resume with the same sequence sends nothing twice.
  bAcks.push(await subscribe(b, { room: "dashboard", after }));
  return b;
}
let b = await startB();
state = () => ({ a: aEvents.map((e) => e.seq), b: bEvents.map((e) => e.seq), acks: bAcks, expected });
step = "receive";
out({ ready: true });

const lastSeq = (evs) => (evs.length ? evs[evs.length - 1].seq : 0);
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
while (bEvents.length < 5) await wait(5);
b.close();
const dropAt = lastSeq(bEvents);
await wait(400); // events keep flowing while B is away
b = await startB(dropAt);
while (aEvents.length < expected || lastSeq(bEvents) < lastSeq(aEvents)) await wait(10);
await wait(200); // anything extra (a duplicate) would arrive now
out({
  result: {
    a: aEvents.map((e) => [e.stream, e.seq, e.kind, e.data.id, e.data.status]),
    b: bEvents.map((e) => [e.stream, e.seq, e.kind, e.data.id, e.data.status]),
    c: cEvents.map((e) => [e.stream, e.seq, e.kind, e.data.id, e.data.status]),
    drop_at: dropAt,
    b_acks: bAcks,
    bad_ack: badAck,
  },
});
a.close(); b.close(); c.close();
process.exit(0);
