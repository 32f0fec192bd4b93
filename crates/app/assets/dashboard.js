// Switchboard live dashboard: figures from the dashboard API, live updates
// from the Socket.IO feed (vendored official client), no external assets.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let token = params.get("token") || localStorage.getItem("switchboard.token") || "";
  const calls = new Map(); // id -> call summary
  let refreshTimer = null;

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
    if (r.status === 401) { askToken(); throw new Error("unauthorized"); }
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  }

  function askToken() {
    $("token-form").hidden = false;
  }
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token-input").value.trim();
    localStorage.setItem("switchboard.token", token);
    $("token-form").hidden = true;
    start();
  });

  const pct = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`);
  const fmtTime = (t) => (t ? new Date(t).toLocaleTimeString() : "");

  async function loadSummary() {
    const s = await api("/api/v1/dashboard/summary");
    $("k-inflight").textContent = s.calls_in_flight;
    $("k-calls").textContent = s.today.calls;
    $("k-rate").textContent = pct(s.today.answer_rate);
    $("k-human").textContent = s.today.answered_by_person;
    $("k-campaigns").textContent = s.active_campaigns;
    $("d-calls").textContent = s.change.calls === null ? "vs. yesterday: –" : `vs. yesterday: ${s.change.calls >= 0 ? "+" : ""}${(s.change.calls * 100).toFixed(0)}%`;
    $("d-rate").textContent = s.change.answer_rate === null ? "" : `${s.change.answer_rate >= 0 ? "+" : ""}${(s.change.answer_rate * 100).toFixed(1)} pts`;
    $("asof").textContent = `as of ${fmtTime(s.as_of)}`;
    document.body.dataset.callsToday = String(s.today.calls);
  }

  async function loadChart() {
    const ts = await api("/api/v1/dashboard/timeseries?metric=calls&interval=hour");
    const svg = $("chart");
    const pts = ts.points;
    const max = Math.max(1, ...pts.map((p) => p.value || 0));
    const w = 800 / Math.max(1, pts.length);
    svg.innerHTML = "";
    pts.forEach((p, i) => {
      const h = ((p.value || 0) / max) * 190;
      const r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      r.setAttribute("x", String(i * w + 2));
      r.setAttribute("y", String(200 - h));
      r.setAttribute("width", String(Math.max(1, w - 4)));
      r.setAttribute("height", String(h));
      r.setAttribute("fill", "#4f8cff");
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${new Date(p.t).toLocaleString()}: ${p.value}`;
      r.appendChild(title);
      svg.appendChild(r);
    });
  }

  async function loadCampaigns() {
    const list = await api("/api/v1/campaigns?status=running&limit=20");
    const box = $("campaigns");
    if (!list.data.length) { box.innerHTML = '<span class="muted">No running campaign.</span>'; return; }
    box.innerHTML = "";
    for (const c of list.data) {
      const p = await api(`/api/v1/campaigns/${c.id}/progress`);
      const done = p.enrollments ? (p.enrollments - (p.by_status.pending || 0) - (p.by_status.retry_wait || 0) - (p.by_status.dialing || 0)) / p.enrollments : 0;
      const row = document.createElement("div");
      row.innerHTML = `<div>${escapeHtml(c.name)} <span class="muted">${p.calls_placed} calls, answer rate ${pct(p.answer_rate)}</span></div><div class="bar"><div style="width:${(done * 100).toFixed(1)}%"></div></div>`;
      box.appendChild(row);
    }
  }

  function escapeHtml(s) {
    return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function renderCalls() {
    const rows = [...calls.values()].sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1)).slice(0, 25);
    const body = $("calls");
    body.innerHTML = "";
    for (const c of rows) {
      const tr = document.createElement("tr");
      tr.className = "call" + (c._flash ? " flash" : "");
      tr.dataset.id = c.id;
      tr.dataset.status = c.status;
      tr.innerHTML = `<td>${escapeHtml(c.id.slice(0, 14))}…</td><td>${escapeHtml(c.to || "")}</td><td><span class="status ${escapeHtml(c.status)}">${escapeHtml(c.status)}</span></td><td>${escapeHtml(c.answered_by || "")}</td><td>${fmtTime(c.updated_at)}</td>`;
      tr.addEventListener("click", () => showCall(c.id));
      body.appendChild(tr);
      c._flash = false;
    }
  }

  async function loadCalls() {
    const page = await api("/api/v1/calls?limit=25");
    for (const c of page.data) calls.set(c.id, c);
    renderCalls();
  }

  async function showCall(id) {
    const box = $("details");
    const c = await api(`/api/v1/calls/${id}`);
    let html = `<div><b>${escapeHtml(c.id)}</b></div><div class="muted">${escapeHtml(c.to || "")} · ${escapeHtml(c.status)} · ${c.duration_secs ?? "–"} s</div>`;
    try {
      const t = await api(`/api/v1/calls/${id}/transcript`);
      html += `<h2 style="margin-top:12px">Transcript</h2>`;
      if (t.summary) html += `<div class="muted">${escapeHtml(t.summary)}</div>`;
      for (const turn of t.turns || []) html += `<div class="turn"><b>${escapeHtml(turn.role)}</b> ${escapeHtml(turn.message || "")}</div>`;
    } catch (_) { html += `<div class="muted" style="margin-top:10px">No transcript.</div>`; }
    try {
      const recs = await api(`/api/v1/calls/${id}/recordings`);
      for (const r of recs.data || []) {
        if (r.status !== "completed") continue;
        html += `<h2 style="margin-top:12px">Recording</h2><audio controls data-rec="${escapeHtml(r.id)}"></audio>`;
      }
    } catch (_) { /* none */ }
    box.innerHTML = html;
    // The media endpoint needs the token: fetched as a blob, played from memory.
    for (const a of box.querySelectorAll("audio[data-rec]")) {
      fetch(`/api/v1/recordings/${a.dataset.rec}/media`, { headers: { Authorization: `Bearer ${token}` } })
        .then((r) => (r.ok ? r.blob() : null))
        .then((b) => { if (b) a.src = URL.createObjectURL(b); });
    }
  }

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      loadSummary().catch(console.warn);
      loadChart().catch(console.warn);
      loadCampaigns().catch(console.warn);
    }, 300);
  }

  let lastSeq = 0;
  function connectLive() {
    // Subscribed to nothing: the dashboard room. On every (re)connect the
    // handshake carries the last sequence seen, so missed events come first.
    const socket = io({
      auth: (cb) => cb(lastSeq ? { token, after: { dashboard: lastSeq } } : { token }),
      transports: ["websocket", "polling"],
    });
    socket.on("connect", () => {
      $("conn").textContent = "live";
      $("conn").className = "live";
    });
    socket.on("subscribed", (ack) => {
      if (ack.refetch) { lastSeq = ack.seq; loadCalls().catch(console.warn); scheduleRefresh(); }
    });
    socket.on("disconnect", () => { $("conn").textContent = "reconnecting"; $("conn").className = ""; });
    socket.on("connect_error", (e) => { $("conn").textContent = "offline"; if (String(e.message).includes("unauthorized")) askToken(); });
    socket.on("event", (e) => {
      if (e.seq <= lastSeq) return; // already seen (a replay)
      lastSeq = e.seq;
      if (e.kind === "call.updated") {
        const old = calls.get(e.data.id) || {};
        calls.set(e.data.id, { ...old, ...e.data, _flash: true });
        renderCalls();
        document.body.dataset.lastEvent = String(e.seq);
      }
      scheduleRefresh();
    });
  }

  async function start() {
    if (!token) { askToken(); return; }
    await Promise.all([loadSummary(), loadChart(), loadCampaigns(), loadCalls()]);
    document.body.dataset.ready = "true";
    connectLive();
  }

  start().catch((e) => console.warn(e.message));
})();
