// Seizure Relay officers' dashboard: plain ES modules, no build step.
// Everything shown from an alert goes through textContent: alerts are written by other
// administrations and are never trusted as HTML.

const KEY_STORE = "relay.key";
const ACK_STATUSES = ["received", "actioning", "intercepted", "no_trace", "closed"];
const MAX_SHOWN = 300;

const $ = (id) => document.getElementById(id);
const cards = new Map();   // id -> {sig, node}: unchanged alerts keep their node (and a click on it)
const state = {
  token: null, me: null, operation: null,
  alerts: new Map(),       // id -> alert, the newest revision seen
  lastSeq: 0,              // the highest event seq received: resume from here
  ws: null, wanted: false, retry: 0, subscribed: false,
  selected: null, vocabulary: {},
};

// --- small DOM helpers -------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
const words = (value) => (value ?? "").toString().replaceAll("_", " ");
const when = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
function banner(text, bad = false) {
  const node = $("banner");
  node.textContent = text ?? "";
  node.hidden = !text;
  node.classList.toggle("bad", bad);
}

// --- HTTP ---------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    ...options, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401) { signOut("Your key is not valid any more. Sign in again."); throw new ApiError(401, "unauthorized"); }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body?.detail || response.statusText);
  return body;
}

// --- signing in ---------------------------------------------------------------------------
async function signIn(token) {
  state.token = token;
  const response = await fetch("/v1/me", { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401 || response.status === 403) throw new Error("This key is not recognised, or it has expired or been revoked.");
  if (!response.ok) throw new Error(`The server answered ${response.status}; try again shortly.`);
  const me = await response.json();
  if (me.role === "admin") throw new Error("Admin keys read no alerts: use a member or analyst key.");
  state.me = me;
  sessionStorage.setItem(KEY_STORE, token);
  $("who").textContent = `${me.administration} · ${me.label} (${me.role})`;
  $("tab-stats").hidden = me.role !== "analyst";
  $("signin").hidden = true;
  $("app").hidden = false;
  await loadVocabulary();
  await loadOperations();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.wanted = false;
  state.ws?.close(1000);
  Object.assign(state, { token: null, me: null, operation: null, ws: null, lastSeq: 0, selected: null });
  state.alerts.clear();
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message ?? "";
  $("signin-error").hidden = !message;
  banner(null);
}

async function loadVocabulary() {
  // The filters offer exactly what the API accepts: read from its OpenAPI document.
  const schemas = (await (await fetch("/openapi.json")).json()).components.schemas;
  const pick = (name) => schemas[name]?.enum ?? [];
  state.vocabulary = { kind: pick("Kind"), priority: pick("Priority"), commodity: pick("Commodity"), transport_mode: pick("TransportMode") };
  const form = $("filters");
  for (const [name, values] of Object.entries(state.vocabulary)) {
    const select = form.elements[name];
    select.length = 1;
    for (const value of values) select.append(el("option", { value }, words(value)));
  }
}

async function loadOperations() {
  const page = await api("/v1/operations?limit=500");
  const select = $("operation");
  select.replaceChildren(...page.items.map((op) => el("option", { value: op.code }, `${op.code} — ${op.name}${op.status === "closed" ? " (closed)" : ""}`)));
  if (!page.items.length) { banner("Your administration takes part in no operation yet."); return; }
  const remembered = sessionStorage.getItem("relay.operation");
  select.value = page.items.some((op) => op.code === remembered) ? remembered : page.items[0].code;
  openOperation(select.value);
}

// --- the live feed ----------------------------------------------------------------------------
function openOperation(code) {
  sessionStorage.setItem("relay.operation", code);
  state.operation = code;
  state.alerts.clear();
  cards.clear();
  state.lastSeq = 0;
  closeDetail();
  renderFeed();
  connect();
  if (!$("stats-view").hidden) loadStats();
}

function connect() {
  state.wanted = true;
  state.subscribed = false;
  state.ws?.close(1000);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: state.token }));
  ws.onmessage = (message) => {
    if (ws !== state.ws) return;
    onFrame(JSON.parse(message.data)).catch((error) => {
      if (error.status !== 401) banner(`Could not load the operation's alerts: ${error.message}. Retrying…`, true);
      ws.close(4000);   // reconnect, and resume from the last event applied
    });
  };
  ws.onclose = (event) => { if (ws === state.ws) onClosed(event); };
}

async function onFrame(frame) {
  switch (frame.type) {
    case "welcome": {
      state.retry = 0;
      $("conn").className = "conn live";
      banner(null);
      const first = state.lastSeq === 0;
      if (first) {
        // History first, then everything after the head the server named: no gap. (The head
        // is kept only once the history is in, so a failed load is retried on reconnect.)
        await loadHistory();
        state.lastSeq = Math.max(state.lastSeq, frame.head);
      }
      state.ws.send(JSON.stringify({ type: "subscribe", id: "feed", operation: state.operation, since: state.lastSeq }));
      break;
    }
    case "subscribed":
      state.subscribed = true;
      if (!frame.recovered) { state.alerts.clear(); state.lastSeq = frame.head; await loadHistory(); }
      break;
    case "event": applyEvent(frame.event, true); break;
    case "error": banner(`The server refused: ${frame.detail}`, true); break;
    default: break;
  }
}

function onClosed(event) {
  $("conn").className = "conn down";
  state.subscribed = false;
  if (!state.wanted) return;
  if (event.code === 4001) { signOut("Your key was revoked or has expired."); return; }
  const delay = Math.min(10_000, 500 * 2 ** state.retry++);
  banner(`Connection lost — reconnecting in ${Math.round(delay / 1000) || 1} s. Nothing will be missed.`, true);
  setTimeout(() => { if (state.wanted && state.token) connect(); }, delay);
}

async function loadHistory() {
  const page = await api(`/v1/operations/${encodeURIComponent(state.operation)}/alerts?sort=-seq&limit=${MAX_SHOWN}`);
  for (const alert of page.items) keepAlert(alert, false);
  renderFeed();
}

function keepAlert(alert, live) {
  const known = state.alerts.get(alert.id);
  if (known && known.revision > alert.revision) return false;   // an older revision, replayed
  state.alerts.set(alert.id, { ...alert, acks: alert.acks ?? known?.acks ?? [], _fresh: live && !known });
  return !known;
}

function applyEvent(event, live) {
  if (event.seq <= state.lastSeq && live) return;               // already applied
  state.lastSeq = Math.max(state.lastSeq, event.seq);
  if (event.alert) {
    const isNew = keepAlert(event.alert, live);
    if (isNew && live && event.type === "alert.created") announce(event.alert);
  } else if (event.type === "alert.acknowledged") {
    const alert = state.alerts.get(event.alert_id);
    if (alert) {
      alert.acks = [...alert.acks.filter((a) => a.administration !== event.ack.administration), event.ack];
    }
  } else if (event.type === "comment.created" && state.selected === event.alert_id) {
    addComment(event.comment);
  }
  renderFeed();
  if (state.selected === (event.alert?.id ?? event.alert_id)) renderDetail(state.alerts.get(state.selected));
}

// --- notifications ---------------------------------------------------------------------------
function announce(alert) {
  if (!["urgent", "flash"].includes(alert.priority) || alert.reported_by === state.me.administration) return;
  beep(alert.priority === "flash" ? 2 : 1);
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(`${alert.priority.toUpperCase()} ${words(alert.kind)} from ${alert.reported_by}`, { body: alert.summary, tag: alert.id });
  }
}
let audio = null;   // one context for the page, unlocked by the "Enable alerts" click
function beep(times) {
  try {
    audio ??= new AudioContext();
    if (audio.state === "suspended") audio.resume();
    for (let i = 0; i < times; i += 1) {
      const tone = audio.createOscillator();
      tone.frequency.value = 880;
      tone.connect(audio.destination);
      tone.start(audio.currentTime + i * 0.3);
      tone.stop(audio.currentTime + i * 0.3 + 0.15);
    }
  } catch { /* no audio here */ }
}

// --- rendering the feed ------------------------------------------------------------------------
function filters() {
  const form = new FormData($("filters"));
  return Object.fromEntries([...form.entries()].map(([k, v]) => [k, v.trim()]).filter(([, v]) => v));
}
function matches(alert, f) {
  if (f.kind && alert.kind !== f.kind) return false;
  if (f.priority && alert.priority !== f.priority) return false;
  if (f.transport_mode && alert.transport_mode !== f.transport_mode) return false;
  if (f.territory && alert.location.territory !== f.territory.toUpperCase()) return false;
  if (f.commodity && !alert.items.some((item) => item.commodity === f.commodity)) return false;
  return true;
}
function goods(alert) {
  return alert.items.map((i) => `${i.quantity} ${i.unit} ${words(i.commodity)}`).join(", ");
}
function card(alert) {
  const node = el("li", {
    class: `alert ${alert.priority} ${alert.status === "withdrawn" ? "withdrawn" : ""} ${alert._fresh ? "fresh" : ""}`,
    tabindex: "0", dataset: { id: alert.id, seq: String(alert.seq) },
    onclick: () => openDetail(alert.id),
    onkeydown: (e) => { if (e.key === "Enter") openDetail(alert.id); },
  },
  el("div", { class: "row" },
    el("span", { class: `tlp tlp-${alert.tlp}` }, `TLP:${alert.tlp}`),
    el("span", { class: `pill ${alert.priority}` }, alert.priority),
    el("span", { class: "pill" }, words(alert.kind)),
    el("strong", {}, alert.reported_by),
    el("span", { class: "muted" }, when(alert.occurred_at)),
    alert.status === "withdrawn" ? el("span", { class: "pill" }, "withdrawn") : null),
  el("div", { class: "summary" }, alert.summary),
  el("div", { class: "row muted" },
    alert.items.length ? el("span", {}, goods(alert)) : null,
    alert.transport_mode ? el("span", {}, words(alert.transport_mode)) : null,
    el("span", {}, [alert.location.place, alert.location.territory].filter(Boolean).join(", ")),
    alert.acks.length ? el("span", {}, `${alert.acks.length} ack${alert.acks.length > 1 ? "s" : ""}`) : null));
  alert._fresh = false;
  return node;
}
function renderFeed() {
  const f = filters();
  const shown = [...state.alerts.values()].filter((a) => matches(a, f)).sort((a, b) => b.seq - a.seq).slice(0, MAX_SHOWN);
  const nodes = shown.map((alert) => {
    const sig = `${alert.revision}|${alert.status}|${alert.acks.length}`;
    let entry = cards.get(alert.id);
    if (!entry || entry.sig !== sig) {
      entry = { sig, node: card(alert) };
      cards.set(alert.id, entry);
    }
    return entry.node;
  });
  if (cards.size > 4 * MAX_SHOWN) for (const id of cards.keys()) if (!state.alerts.has(id)) cards.delete(id);
  $("feed").replaceChildren(...nodes);
  $("feed-empty").hidden = shown.length > 0;
}

// --- the detail panel --------------------------------------------------------------------------
async function openDetail(id) {
  state.selected = id;
  $("detail").hidden = false;
  $("detail-error").hidden = true;
  try {
    const [alert, comments] = await Promise.all([
      api(`/v1/alerts/${id}`), api(`/v1/alerts/${id}/comments?limit=500`),
    ]);
    if (state.selected !== id) return;   // another alert was opened meanwhile
    keepAlert(alert, false);
    renderDetail(state.alerts.get(id));
    $("comments").replaceChildren();
    for (const comment of comments.items) addComment(comment);
  } catch (error) {
    if (state.selected === id) showDetailError(error);
  }
}
function closeDetail() {
  state.selected = null;
  $("detail").hidden = true;
}
function pair(label, value) {
  return value === null || value === undefined || value === "" ? [] : [el("dt", {}, label), el("dd", {}, value)];
}
function renderDetail(alert) {
  if (!alert) return;
  const route = alert.route ? [alert.route.origin, ...(alert.route.transit || []), alert.route.destination].filter(Boolean).join(" → ") : null;
  const audience = alert.audience.scope === "operation" ? "Everyone in the operation" : `Restricted: ${alert.audience.recipients.join(", ") || "reporter and coordinator only"}`;
  $("detail-body").replaceChildren(...[
    el("div", { class: "row" }, el("span", { class: `tlp tlp-${alert.tlp}` }, `TLP:${alert.tlp}`), el("span", { class: `pill ${alert.priority}` }, alert.priority), el("span", { class: "pill" }, words(alert.kind)), alert.status === "withdrawn" ? el("span", { class: "pill" }, "withdrawn") : null),
    el("h2", {}, alert.summary),
    el("dl", {},
      ...pair("Reported by", `${alert.reported_by} (${alert.reported_by_key})`),
      ...pair("Occurred", when(alert.occurred_at)),
      ...pair("Place", [alert.location.place, alert.location.unlocode, alert.location.territory].filter(Boolean).join(", ")),
      ...pair("Mode", words(alert.transport_mode)),
      ...pair("Route", route),
      ...pair("Detection", words(alert.detection_method)),
      ...pair("Concealment", [alert.concealment_methods.map(words).join(", "), alert.concealment].filter(Boolean).join(" — ")),
      ...pair("Identifiers", alert.identifiers.map((i) => `${words(i.type)}: ${i.value}`).join("; ")),
      ...pair("Offenders", alert.offenders ? `${alert.offenders.count}${alert.offenders.nationalities.length ? ` (${alert.offenders.nationalities.join(", ")})` : ""}` : null),
      ...pair("Audience", audience),
      ...pair("Reference", alert.reference),
      ...pair("Withdrawn", alert.withdrawn_reason)),
    alert.items.length ? el("table", {}, el("tr", {}, el("th", {}, "Commodity"), el("th", {}, "Form"), el("th", {}, "Quantity")),
      ...alert.items.map((i) => el("tr", {}, el("td", {}, words(i.commodity)), el("td", {}, words(i.form)), el("td", {}, `${i.quantity} ${i.unit}`)))) : null,
    alert.narrative ? el("div", { class: "narrative" }, alert.narrative) : null,
    el("h3", {}, "Acknowledgements"),
    el("ol", { class: "acks" }, ...(alert.acks.length ? alert.acks.map((a) => el("li", {}, el("strong", {}, a.administration), ` ${words(a.status)} · ${when(a.at)}`, a.note ? ` — ${a.note}` : "")) : [el("li", { class: "muted" }, "None yet")])),
  ].filter(Boolean));
  const mine = alert.acks.find((a) => a.administration === state.me.administration)?.status;
  $("ack-buttons").replaceChildren(...ACK_STATUSES.map((status) => el("button", {
    type: "button", class: status === mine ? "mine" : "", dataset: { status },
    onclick: () => acknowledge(alert.id, status),
  }, words(status))));
}
function addComment(comment) {
  const list = $("comments");
  if (list.querySelector(`[data-id="${CSS.escape(comment.id)}"]`)) return;
  list.append(el("li", { dataset: { id: comment.id } }, el("strong", {}, comment.administration), ` · ${when(comment.created_at)}\n`, comment.body));
}
async function acknowledge(id, status) {
  try { await api(`/v1/alerts/${id}/acks`, { method: "POST", body: { status } }); } catch (error) { showDetailError(error); }
}
function showDetailError(error) {
  $("detail-error").textContent = error.status === 404 ? "This alert is not (or no longer) visible to your administration." : `Could not complete: ${error.message}`;
  $("detail-error").hidden = false;
}

// --- statistics (analysts) ---------------------------------------------------------------------
const CHARTS = [["commodity", "By commodity", "mass_kg", "kg"], ["transport_mode", "By mode", "seizures", "seizures"], ["concealment_method", "By concealment", "seizures", "seizures"], ["week", "Weekly trend", "seizures", "seizures"]];
async function loadStats() {
  const code = encodeURIComponent(state.operation);
  try {
    const results = await Promise.all(CHARTS.map(([by]) => api(`/v1/operations/${code}/stats?by=${by}`)));
    const total = results[0].total;
    $("stats-totals").replaceChildren(...[["alerts", total.alerts], ["seizures", total.seizures], ["kg seized", total.mass_kg], ["litres", total.volume_l], ["tablets", total.tablets]]
      .map(([label, value]) => el("div", { class: "kpi" }, el("b", {}, Number(Number(value).toFixed(2)).toLocaleString()), label)));
    $("stats-charts").replaceChildren(...results.map((result, i) => chart(CHARTS[i], result.groups)));
  } catch (error) {
    $("stats-charts").replaceChildren(el("p", { class: "error" }, `Statistics unavailable: ${error.message}`));
  }
}
function unitFor(unit, value) {
  return unit === "seizures" && value === 1 ? "seizure" : unit;
}
function chart([by, title, field, unit], groups) {
  // Groups with nothing of this measure (mdma counted in tablets on a kg chart) are left out.
  const measured = groups.filter((g) => g[field] > 0);
  const rows = by === "week" ? measured : measured.sort((a, b) => b[field] - a[field]).slice(0, 10);
  const top = Math.max(1, ...rows.map((g) => g[field]));
  return el("section", { class: "chart", dataset: { by } }, el("h3", {}, title),
    ...rows.map((g) => el("div", { class: "bar" },
      el("span", {}, g.key === null ? "(not stated)" : words(g.key)),
      fill((100 * g[field]) / top),
      el("span", { class: "value" }, `${Number(g[field].toFixed(2)).toLocaleString()} ${unitFor(unit, g[field])}`))),
    rows.length ? null : el("p", { class: "muted" }, "Nothing yet."));
}
function fill(percent) {
  const node = el("span", { class: "fill" });
  node.style.width = `${percent}%`;   // through the CSSOM: the page's CSP forbids style attributes
  return node;
}
function showTab(name) {
  $("feed-view").hidden = name !== "feed";
  $("stats-view").hidden = name !== "stats";
  $("tab-feed").classList.toggle("active", name === "feed");
  $("tab-stats").classList.toggle("active", name === "stats");
  if (name === "stats") { closeDetail(); loadStats(); }
}

// --- wiring --------------------------------------------------------------------------------------
$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("key").value.trim();
  $("signin-error").hidden = true;
  try { await signIn(token); $("key").value = ""; } catch (error) { signOut(error.message); }
});
$("signout").addEventListener("click", () => signOut());
$("operation").addEventListener("change", (event) => openOperation(event.target.value));
$("filters").addEventListener("input", renderFeed);
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("detail-close").addEventListener("click", closeDetail);
$("tab-feed").addEventListener("click", () => showTab("feed"));
$("tab-stats").addEventListener("click", () => showTab("stats"));
$("notify").addEventListener("click", async () => {
  if ("Notification" in window) await Notification.requestPermission();
  beep(1);
  $("notify").textContent = "Alerts on";
});
$("comment-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = $("comment-body").value.trim();
  if (!body || !state.selected) return;
  try {
    addComment(await api(`/v1/alerts/${state.selected}/comments`, { method: "POST", body: { body } }));
    $("comment-body").value = "";
  } catch (error) { showDetailError(error); }
});
window.addEventListener("online", () => { if (state.token && state.ws?.readyState !== WebSocket.OPEN) connect(); });

const saved = sessionStorage.getItem(KEY_STORE);
if (saved) signIn(saved).catch((error) => signOut(error.message));
else signOut();
