// riskweb's page: the live feed (/api/events), open alerts by unit
// (/api/alerts?status=open), a unit's indicators, trend and alert history
// (/api/indicators, /api/alerts?unit_id=). Units, officers and enterprises
// show by their names from the names list (/api/names, read again every
// NAMES_EVERY ms and when the feed reconnects) and by id when it has none;
// the id stays in the element's title. Every string from the data is
// put in the page with textContent (never innerHTML), so a name holding
// "<script>" shows as text. Filters and the language live in the URL.
"use strict";

const I18N = {
  "zh-CN": {
    title: "执法风险预警", nav_live: "实时", nav_open: "未结预警", other_lang: "English",
    conn_up: "已连接", conn_down: "已断开，正在重连…", conn_connecting: "连接中…",
    f_detector: "检测器", f_rule: "规则", f_severity: "级别", f_status: "状态", f_unit: "单位",
    any: "全部", clear: "清除", feed: "实时预警", by_detector: "按检测器（当前列表）",
    c_time: "时间", c_severity: "级别", c_status: "状态", c_unit: "单位",
    c_detector: "检测器 / 规则", c_summary: "摘要",
    sev_critical: "严重", sev_warning: "警告", sev_info: "提示",
    st_firing: "预警中", st_acknowledged: "已确认", st_resolved: "已解除",
    st_retracted: "已撤回", st_closed: "已关闭",
    open_title: "未结预警（按单位）", ack_hint: "本页只读；确认预警请用 riskctl ack。",
    acked_by: "确认人", unit: "单位", indicators: "指标（滚动窗口）", trend: "近几个月趋势",
    history: "预警记录", no_ind: "暂无指标数据", no_open: "当前没有未结预警",
    k_officer: "执法人员", k_enterprise: "企业",
    count: n => `共 ${n} 条`, alerts_n: n => `${n} 条`,
    ind: {
      filings: "备案检查数", unfiled: "未备案检查数", filing_rate: "备案率", scan_rate: "扫码率",
      rating_rate: "评价率", bad_rating_share: "差评占比",
      inspections_per_enterprise: "户均检查次数", cases_opened: "立案数", cases_decided: "结案数",
      fines: "罚没金额（元）", lenient_share: "从轻减轻占比", complaints: "投诉数",
      reviews: "复议诉讼数", corrections: "被纠错数", correction_rate: "纠错率",
      open_critical: "未结严重预警", open_warning: "未结警告", open_info: "未结提示",
      from: "起", to: "止", updated_at: "更新时间"
    }
  },
  en: {
    title: "Enforcement risk alerts", nav_live: "Live", nav_open: "Open alerts", other_lang: "中文",
    conn_up: "connected", conn_down: "disconnected, reconnecting…", conn_connecting: "connecting…",
    f_detector: "Detector", f_rule: "Rule", f_severity: "Severity", f_status: "Status",
    f_unit: "Unit", any: "any", clear: "Clear", feed: "Live feed",
    by_detector: "By detector (this list)",
    c_time: "Time", c_severity: "Severity", c_status: "Status", c_unit: "Unit",
    c_detector: "Detector / rule", c_summary: "Summary",
    sev_critical: "critical", sev_warning: "warning", sev_info: "info",
    st_firing: "firing", st_acknowledged: "acknowledged", st_resolved: "resolved",
    st_retracted: "retracted", st_closed: "closed",
    open_title: "Open alerts by unit", ack_hint: "Read-only page; acknowledge with riskctl ack.",
    acked_by: "acknowledged by", unit: "Unit", indicators: "Indicators (rolling window)",
    trend: "Trend over recent months", history: "Alert history", no_ind: "No indicators yet",
    no_open: "No open alerts", count: n => `${n} alerts`, alerts_n: n => `${n}`,
    k_officer: "Officer", k_enterprise: "Enterprise",
    ind: {
      filings: "Filings", unfiled: "Unfiled", filing_rate: "Filing rate", scan_rate: "Scan rate",
      rating_rate: "Rating rate", bad_rating_share: "Bad rating share",
      inspections_per_enterprise: "Inspections per enterprise", cases_opened: "Cases opened",
      cases_decided: "Cases decided", fines: "Fines (yuan)", lenient_share: "Lenient share",
      complaints: "Complaints", reviews: "Reviews", corrections: "Corrections",
      correction_rate: "Correction rate", open_critical: "Open critical",
      open_warning: "Open warnings", open_info: "Open info", from: "From", to: "To",
      updated_at: "Updated"
    }
  }
};
const IND_ORDER = ["filings", "unfiled", "filing_rate", "scan_rate", "rating_rate",
  "bad_rating_share", "inspections_per_enterprise", "cases_opened", "cases_decided", "fines",
  "lenient_share", "complaints", "reviews", "corrections", "correction_rate", "open_critical",
  "open_warning", "open_info", "from", "to", "updated_at"];
const TREND = ["filing_rate", "scan_rate", "bad_rating_share", "lenient_share", "correction_rate"];
const FILTERS = ["detector", "rule", "severity", "status", "unit"];
const FEED_MAX = 1000;
const NAMES_EVERY = 60000;

const state = {
  lang: "zh-CN",
  alerts: new Map(),          // id -> {a: alert JSON with latest status, row: <tr>}
  conn: "connecting",
  charts: {},
  filters: {},
  names: {},                  // kind -> id -> name (/api/names)
  namesVersion: null
};

function t(key, arg) {
  const v = (I18N[state.lang] || I18N["zh-CN"])[key];
  return typeof v === "function" ? v(arg) : (v === undefined ? key : v);
}
function indName(k) { return (I18N[state.lang].ind || {})[k] || k; }

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
function nameOf(kind, id) {
  const n = state.names[kind];
  return (n && typeof n[id] === "string" && n[id]) || "";
}
function label(kind, id) { return nameOf(kind, id) || id; }
function unitOf(a) { return (a.subject && a.subject.unit_id) || ""; }
function fmtTime(s) { return typeof s === "string" ? s.replace("T", " ").replace(/\.\d+/, "").replace("Z", "") : ""; }

// ---------------------------------------------------------------- URL state
function readUrl() {
  const q = new URLSearchParams(location.search);
  state.lang = q.get("lang") === "en" ? "en" : "zh-CN";
  for (const f of FILTERS) state.filters[f] = q.get(f) || "";
}
function writeUrl() {
  const q = new URLSearchParams();
  for (const f of FILTERS) if (state.filters[f]) q.set(f, state.filters[f]);
  if (state.lang === "en") q.set("lang", "en");
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? "?" + s : "") + location.hash);
}

// ---------------------------------------------------------------- language
function applyLang() {
  document.documentElement.lang = state.lang;
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  document.getElementById("lang").textContent = t("other_lang");
  showConn(state.conn);
  renderFeed();
  route();
}

// ---------------------------------------------------------------- connection
function showConn(s) {
  state.conn = s;
  const c = document.getElementById("conn");
  c.dataset.state = s;
  c.className = "conn " + (s === "up" ? "up" : "down");
  c.textContent = t("conn_" + s);
}

// ---------------------------------------------------------------- the feed
function matches(a) {
  const f = state.filters;
  if (f.detector && a.detector !== f.detector) return false;
  if (f.rule && a.rule !== f.rule) return false;
  if (f.severity && a.severity !== f.severity) return false;
  if (f.status && a.status !== f.status) return false;
  if (f.unit && unitOf(a) !== f.unit) return false;
  return true;
}

function sevCell(a) { return el("td", "sev sev-" + (a.severity || ""), a.severity ? t("sev_" + a.severity) : ""); }
function stCell(a) { return el("td", "st st-" + (a.status || ""), a.status ? t("st_" + a.status) : ""); }
function detCell(a) { return el("td", "det", (a.detector || "") + (a.rule ? " / " + a.rule : "")); }
function unitLink(u) {
  const a = el("a", "unit", label("unit", u));
  a.href = "#/unit/" + encodeURIComponent(u);
  a.title = u;
  return a;
}
// The officer and enterprise of an alert, by name, under its unit.
function subjectLines(td, a) {
  const s = a.subject || {};
  for (const [k, f] of [["officer", "officer_id"], ["enterprise", "enterprise_id"]]) {
    if (typeof s[f] !== "string" || !s[f]) continue;
    const d = el("div", "subj " + k, label(k, s[f]));
    d.title = t("k_" + k) + " " + s[f];
    td.appendChild(d);
  }
}

function feedRow(a) {
  const tr = el("tr");
  tr.dataset.id = a.id;
  tr.appendChild(el("td", "time", fmtTime(a.ts)));
  tr.appendChild(sevCell(a));
  tr.appendChild(stCell(a));
  const u = el("td", "unit");
  if (unitOf(a)) u.appendChild(unitLink(unitOf(a)));
  subjectLines(u, a);
  tr.appendChild(u);
  tr.appendChild(detCell(a));
  tr.appendChild(el("td", "summary", a.summary || ""));
  return tr;
}

function renderFeed() {
  const body = document.querySelector("#feed tbody");
  clear(body);
  const items = [...state.alerts.values()].reverse();
  let shown = 0;
  const byDet = {};
  for (const it of items) {
    if (!matches(it.a)) continue;
    it.row = feedRow(it.a);
    body.appendChild(it.row);
    shown++;
    byDet[it.a.detector || "?"] = (byDet[it.a.detector || "?"] || 0) + 1;
  }
  document.getElementById("feed-count").textContent = t("count", shown);
  updateLists();
  drawDetectors(byDet);
}

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => { renderPending = false; renderFeed(); }, 100);
}

function onEntry(kind, ev) {
  let j;
  try { j = JSON.parse(ev.data); } catch (e) { return; }
  if (!j || typeof j.id !== "string") return;
  const old = state.alerts.get(j.id);
  if (kind === "alert") {
    state.alerts.delete(j.id);
    state.alerts.set(j.id, { a: j });
  } else if (old) {
    old.a = Object.assign({}, old.a, { status: j.status });
    if (j.status === "acknowledged") old.a.acknowledged = { by: j.by, note: j.note, ts: j.ts };
  } else {
    state.alerts.set(j.id, { a: j });   // a notice of an alert older than the history
  }
  while (state.alerts.size > FEED_MAX) state.alerts.delete(state.alerts.keys().next().value);
  scheduleRender();
  if (!document.getElementById("view-open").hidden) scheduleOpen();
}

function connect() {
  const es = new EventSource("/api/events");
  es.onopen = () => { showConn("up"); loadNames(); };
  es.onerror = () => showConn(es.readyState === EventSource.CLOSED ? "down" : "down");
  es.addEventListener("alert", ev => onEntry("alert", ev));
  es.addEventListener("notice", ev => onEntry("notice", ev));
  // EventSource reconnects by itself (sending Last-Event-ID); if the
  // server refused it for good, start a new one.
  setInterval(() => { if (es.readyState === EventSource.CLOSED) { showConn("down"); connect(); } }, 5000);
}

function updateLists() {
  const sets = { detector: new Set(), rule: new Set(), unit: new Set() };
  for (const { a } of state.alerts.values()) {
    if (a.detector) sets.detector.add(a.detector);
    if (a.rule) sets.rule.add(a.rule);
    if (unitOf(a)) sets.unit.add(unitOf(a));
  }
  for (const k of Object.keys(sets)) {
    const dl = document.getElementById("dl-" + k);
    clear(dl);
    for (const v of [...sets[k]].sort()) {
      const o = el("option");
      o.value = v;
      if (k === "unit" && nameOf("unit", v)) o.label = nameOf("unit", v);
      dl.appendChild(o);
    }
  }
}

// ---------------------------------------------------------------- charts
function chart(id, cfg) {
  if (typeof Chart === "undefined") return;
  if (state.charts[id]) state.charts[id].destroy();
  state.charts[id] = new Chart(document.getElementById(id), cfg);
}
function drawDetectors(byDet) {
  const labels = Object.keys(byDet).sort();
  chart("chart-detectors", {
    type: "bar",
    data: { labels, datasets: [{ label: t("feed"), data: labels.map(l => byDet[l]), backgroundColor: "#1d5fa8" }] },
    options: { animation: false, plugins: { legend: { display: false } }, indexAxis: "y" }
  });
}

// ---------------------------------------------------------------- open alerts
let openTimer = null;
function scheduleOpen() { clearTimeout(openTimer); openTimer = setTimeout(loadOpen, 500); }
async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(url + ": " + r.status);
  return r.json();
}
async function loadOpen() {
  const box = document.getElementById("open-groups");
  let list;
  try { list = await getJSON("/api/alerts?status=open&limit=1000"); } catch (e) { return; }
  clear(box);
  if (!list.length) { box.appendChild(el("p", "muted", t("no_open"))); return; }
  const groups = new Map();
  for (const a of list) {
    const u = unitOf(a);
    if (!groups.has(u)) groups.set(u, []);
    groups.get(u).push(a);
  }
  for (const [u, as] of [...groups.entries()].sort((x, y) => y[1].length - x[1].length)) {
    const g = el("div", "group");
    const h = el("h3");
    h.appendChild(unitLink(u));
    h.appendChild(el("span", "muted", " · " + t("alerts_n", as.length)));
    g.appendChild(h);
    const tb = el("table"), body = el("tbody");
    for (const a of as) {
      const tr = el("tr");
      tr.dataset.id = a.id;
      tr.appendChild(el("td", "time", fmtTime(a.ts)));
      tr.appendChild(sevCell(a));
      tr.appendChild(stCell(a));
      tr.appendChild(detCell(a));
      const s = el("td", "summary", a.summary || "");
      if (a.acknowledged) {
        s.appendChild(el("div", "ack", t("acked_by") + ": " + (a.acknowledged.by || "") +
          (a.acknowledged.note ? " — " + a.acknowledged.note : "") + " (" + fmtTime(a.acknowledged.ts) + ")"));
      }
      tr.appendChild(s);
      body.appendChild(tr);
    }
    tb.appendChild(body);
    g.appendChild(tb);
    box.appendChild(g);
  }
}

// ---------------------------------------------------------------- a unit
function fmtInd(k, v) {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number" && /rate|share/.test(k)) return (v * 100).toFixed(1) + "%";
  if (typeof v === "number") return v.toLocaleString(state.lang);
  return fmtTime(v);
}
function showUnitTitle(u) {
  const h = document.getElementById("unit-name");
  h.textContent = label("unit", u);
  h.title = u;
  document.getElementById("unit-id").textContent = nameOf("unit", u) ? u : "";
}
async function loadUnit(u) {
  showUnitTitle(u);
  const q = "scope=unit&key=" + encodeURIComponent(u);
  const body = document.querySelector("#ind tbody");
  clear(body);
  try {
    const ind = await getJSON("/api/indicators?" + q + "&period=window");
    const keys = IND_ORDER.filter(k => k in ind);
    document.getElementById("ind-empty").hidden = keys.length > 0;
    for (const k of keys) {
      const tr = el("tr");
      tr.dataset.key = k;
      tr.appendChild(el("td", null, indName(k)));
      tr.appendChild(el("td", null, fmtInd(k, ind[k])));
      body.appendChild(tr);
    }
  } catch (e) { /* shown as empty */ }
  try {
    const idx = await getJSON("/api/indicators?scope=unit");
    const months = (idx.periods || []).filter(p => /^\d{4}-\d{2}$/.test(p)).sort().slice(-6);
    const rows = await Promise.all(months.map(m => getJSON("/api/indicators?" + q + "&period=" + encodeURIComponent(m))));
    const colors = ["#1d5fa8", "#1e7b34", "#b3261e", "#a15c00", "#6b3fa0"];
    chart("chart-trend", {
      type: "line",
      data: { labels: months, datasets: TREND.map((k, i) => ({
        label: indName(k), data: rows.map(r => (typeof r[k] === "number" ? r[k] : null)),
        borderColor: colors[i], backgroundColor: colors[i], spanGaps: true })) },
      options: { animation: false, scales: { y: { min: 0, max: 1 } } }
    });
  } catch (e) { /* no trend */ }
  const hb = document.querySelector("#unit-alerts tbody");
  clear(hb);
  try {
    for (const a of await getJSON("/api/alerts?unit_id=" + encodeURIComponent(u) + "&limit=200")) {
      const tr = el("tr");
      tr.dataset.id = a.id;
      tr.appendChild(el("td", "time", fmtTime(a.ts)));
      tr.appendChild(sevCell(a));
      tr.appendChild(stCell(a));
      tr.appendChild(detCell(a));
      tr.appendChild(el("td", "summary", a.summary || ""));
      hb.appendChild(tr);
    }
  } catch (e) { /* nothing */ }
}

// ---------------------------------------------------------------- names
// A new version of the names list redraws what shows names.
async function loadNames() {
  let n;
  try { n = await getJSON("/api/names"); } catch (e) { return; }
  if (!n || typeof n !== "object" || n.version === state.namesVersion) return;
  state.namesVersion = n.version;
  state.names = {};
  for (const k of Object.keys(n))
    if (n[k] && typeof n[k] === "object") state.names[k] = n[k];
  renderFeed();
  const h = location.hash || "#/";
  if (h === "#/open") loadOpen();
  if (h.startsWith("#/unit/")) showUnitTitle(decodeURIComponent(h.slice("#/unit/".length)));
}

// ---------------------------------------------------------------- routing
function route() {
  const h = location.hash || "#/";
  const views = { live: h === "#/" || h === "", open: h === "#/open", unit: h.startsWith("#/unit/") };
  for (const v of Object.keys(views)) document.getElementById("view-" + v).hidden = !views[v];
  for (const a of document.querySelectorAll("header nav a"))
    a.classList.toggle("active", a.getAttribute("href") === h);
  if (views.open) loadOpen();
  if (views.unit) loadUnit(decodeURIComponent(h.slice("#/unit/".length)));
}

// ---------------------------------------------------------------- start
function init() {
  readUrl();
  const form = document.getElementById("filters");
  for (const f of FILTERS) form.elements[f].value = state.filters[f];
  form.addEventListener("input", () => {
    for (const f of FILTERS) state.filters[f] = form.elements[f].value.trim();
    writeUrl();
    renderFeed();
  });
  form.addEventListener("reset", () => setTimeout(() => form.dispatchEvent(new Event("input")), 0));
  form.addEventListener("submit", e => e.preventDefault());
  document.getElementById("lang").addEventListener("click", () => {
    state.lang = state.lang === "en" ? "zh-CN" : "en";
    writeUrl();
    applyLang();
  });
  window.addEventListener("hashchange", route);
  showConn("connecting");
  applyLang();
  connect();
  setInterval(loadNames, NAMES_EVERY);
}
document.addEventListener("DOMContentLoaded", init);
