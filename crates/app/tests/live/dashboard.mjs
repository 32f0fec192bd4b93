// The dashboard page in a real headless Chromium (Debian's `chromium`, driven
// with puppeteer-core over CDP).
//
//   node dashboard.mjs <base-url> <token> [screenshot.png]
//
// stdout, one JSON line each:
//   {"ready": {...figures on the page...}}   loaded, live
//   {"waiting": true}                        after stdin "expect <call_id> <status>"
//   {"updated_ms": N}                        the call's row shows the status
//   {"done": {"errors": [...]}}              console errors, failed requests, page errors
import puppeteer from "puppeteer-core";
import readline from "node:readline";

const [base, token, shot] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const errors = [];
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
setTimeout(async () => { out({ error: "timed out" }); await browser.close(); process.exit(1); }, 90_000);
const page = await browser.newPage();
page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
page.on("response", (r) => { if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`); });
await page.setViewport({ width: 1440, height: 900 });
await page.goto(`${base}/dashboard?token=${encodeURIComponent(token)}`, { waitUntil: "load" });
await page.waitForFunction(
  () => document.body.dataset.ready === "true" && document.getElementById("conn").textContent === "live",
  { timeout: 20_000 },
);
const figures = await page.evaluate(() => ({
  calls_today: document.getElementById("k-calls").textContent,
  in_flight: document.getElementById("k-inflight").textContent,
  answer_rate: document.getElementById("k-rate").textContent,
  active_campaigns: document.getElementById("k-campaigns").textContent,
  rows: document.querySelectorAll("#calls tr").length,
  bars: document.querySelectorAll("#chart rect").length,
  campaign_bars: document.querySelectorAll("#campaigns .bar").length,
}));
out({ ready: figures });

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const [cmd, id, status] = line.trim().split(" ");
  if (cmd === "expect") {
    out({ waiting: true });
    const t0 = Date.now();
    await page.waitForFunction(
      (id, st) => {
        const r = document.querySelector(`#calls tr[data-id="${id}"]`);
        return r && r.dataset.status === st;
      },
      { timeout: 10_000, polling: 10 },
      id,
      status,
    );
    out({ updated_ms: Date.now() - t0 });
  } else if (cmd === "open") {
    await page.click(`#calls tr[data-id="${id}"]`);
    await page.waitForFunction(() => document.getElementById("details").textContent.includes("Transcript") || document.getElementById("details").textContent.includes("No transcript"), { timeout: 10_000 });
    out({ details: await page.evaluate(() => document.getElementById("details").textContent) });
  } else if (cmd === "done") {
    break;
  }
}
await new Promise((r) => setTimeout(r, 500));
if (shot) await page.screenshot({ path: shot, fullPage: true });
out({ done: { errors } });
await browser.close();
process.exit(0);
