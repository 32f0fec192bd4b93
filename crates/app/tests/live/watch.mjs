// Subscribes to rooms and prints the first N events of each.
//
//   node watch.mjs <base-url> <token> <n> <room>...
//
// Prints {"ready": [acks]} once subscribed, then {"events": {room: [...]}}.
import { io } from "socket.io-client";

const [base, token, nRaw, ...rooms] = process.argv.slice(2);
const n = Number(nRaw);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const fail = (m) => { out({ error: m }); process.exit(1); };
const events = Object.fromEntries(rooms.map((r) => [r, []]));
setTimeout(() => fail(`timed out: ${JSON.stringify(Object.fromEntries(rooms.map((r) => [r, events[r].length])))}`), 120_000);
const s = io(base, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true, timeout: 60_000 });
s.on("connect_error", (e) => fail(`connect_error: ${e.message}`));
// A dropped connection or an unanswered subscribe would otherwise wait out the timer silently.
let closing = false;
s.on("disconnect", (reason) => { if (!closing) fail(`disconnected: ${reason}`); });
s.on("event", (e) => { if (events[e.stream]) events[e.stream].push(e); });
await new Promise((r) => s.once("connect", r));
const acks = [];
for (const room of rooms) {
  acks.push(await s.timeout(60_000).emitWithAck("subscribe", { room }).catch((e) => fail(`subscribe ${room}: ${e.message}`)));
}
out({ ready: acks });
while (rooms.some((r) => events[r].length < n)) await new Promise((r) => setTimeout(r, 10));
out({ events });
closing = true;
s.close();
process.exit(0);
