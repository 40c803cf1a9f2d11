// Broadcast overlays: one page, the kind from its address (/overlay/<kind>), options from its
// query (checked by the bridge). Fed by the dashboard's WebSocket; the championship table also
// reads /api/league once and then follows the bridge's `league` messages.

import { el, gap, lapTime, surname, teamColour, TYRE_LETTERS } from "./format.js";
import { Live } from "./live.js";

const kind = location.pathname.split("/").pop();
const query = new URLSearchParams(location.search);
const number = (name, fallback) => (query.has(name) ? Number(query.get(name)) : fallback);
const options = {
  rows: number("rows", 10),
  car: query.has("car") ? Number(query.get("car")) : null,
  other: query.has("other") ? Number(query.get("other")) : null,
  theme: query.get("theme") || "dark",
  scale: number("scale", 1),
  hold: number("hold", 8),
};
const root = document.querySelector("#overlay");
document.body.classList.add(`theme-${options.theme}`, `overlay-${kind}`);
document.body.style.setProperty("--scale", String(options.scale));
root.dataset.kind = kind;

const view = { tower: [], session: {}, fastest: null, sessionUid: null };

// "Lando NORRIS" -> "NOR": what a broadcast tower shows.
function code(name) {
  return surname(name).replace(/\s+/g, "").slice(0, 3).toUpperCase();
}

function bar(team) {
  return el("span", { class: "bar", style: `background:${teamColour(team)}` });
}

function renderTower() {
  const rows = view.tower.slice(0, options.rows);
  const body = rows.map((row) => {
    const out = ["dnf", "retired", "dsq"].includes(row.status);
    const leader = row.position === 1;
    const tr = el("tr", {
      "data-car": String(row.car_index ?? ""),
      "data-driver": row.driver || "",
      class: `${row.in_pit ? "pit" : ""} ${out ? "out" : ""}`,
    });
    const barCell = el("td", { class: "bar", style: `background:${teamColour(row.team)}` });
    const name = el("td", { class: "code" }, code(row.driver));
    if (options.theme === "team") name.style.background = teamColour(row.team);
    tr.append(
      el("td", { class: "pos" }, String(row.position ?? "")),
      barCell,
      name,
      el("td", { class: "num" }, out ? "OUT" : row.in_pit ? "PIT" : leader ? "Leader" : gap(row.interval_ms)),
      el("td", { class: `tyre tyre-${row.tyre || "none"}` }, TYRE_LETTERS[row.tyre] || ""),
    );
    return tr;
  });
  const table = el("table", { class: "ov-tower" }, el("tbody", {}, ...body));
  const title = el("div", { class: "ov-title" }, lapText() || "TIMING");
  root.replaceChildren(title, table);
}

function lapText() {
  const s = view.session;
  if (!s || !s.lap) return "";
  return `LAP ${Math.min(s.lap, s.total_laps || s.lap)}/${s.total_laps || "?"}`;
}

function renderBattle() {
  const rows = view.tower;
  const car = options.car !== null ? rows.find((r) => r.car_index === options.car)
    : rows.find((r) => r.position === 2);
  if (!car) { root.replaceChildren(); return; }
  // Against the car ahead; the leader against the car behind.
  const other = options.other !== null ? rows.find((r) => r.car_index === options.other)
    : rows.find((r) => r.position === car.position - 1) || rows.find((r) => r.position === car.position + 1);
  if (!other) { root.replaceChildren(); return; }
  // The gap between any two cars: the difference of their gaps to the leader.
  const ahead = car.position > other.position ? other : car;
  const behind = ahead === car ? other : car;
  let between = null;
  if (behind.position === ahead.position + 1 && behind.interval_ms !== null && behind.interval_ms !== undefined) between = behind.interval_ms;
  else if (Number.isFinite(behind.gap_ms) && Number.isFinite(ahead.gap_ms ?? 0)) between = behind.gap_ms - (ahead.gap_ms || 0);
  const side = (row) => el("div", { class: "car", "data-car": String(row.car_index) },
    bar(row.team), el("span", { class: "pos" }, `P${row.position}`), el("span", { class: "code" }, code(row.driver)));
  root.replaceChildren(el("div", { class: "ov-battle" },
    side(ahead), el("div", { class: "gap" }, between === null ? "" : gap(between)), side(behind)));
}

let hideTimer = null;
function renderFastest(announce) {
  const f = view.fastest;
  if (!f) { root.replaceChildren(); return; }
  const team = (view.tower.find((r) => r.car_index === f.car_index) || {}).team;
  const banner = el("div", { class: "ov-fastest", "data-driver": f.driver },
    el("span", { class: "label" }, "FASTEST LAP"), bar(team),
    el("span", { class: "who" }, surname(f.driver)),
    el("span", { class: "time" }, lapTime(f.lap_time_ms)),
    el("span", { class: "lap" }, `Lap ${f.lap}`));
  root.replaceChildren(banner);
  clearTimeout(hideTimer);
  if (announce && options.hold > 0) hideTimer = setTimeout(() => { banner.hidden = true; }, options.hold * 1000);
}

function onStandings(table) {
  if (!table || String(table.session_uid || "").startsWith("manual")) return;
  if (view.sessionUid && table.session_uid !== view.sessionUid) return;
  const f = table.fastest_lap || null;
  const key = (x) => (x ? `${x.car_index}|${x.driver}|${x.lap}|${x.lap_time_ms}` : "");
  if (key(f) === key(view.fastest)) return;
  view.fastest = f;
  if (kind === "fastest-lap") renderFastest(true);
}

function renderHeader() {
  const s = view.session || {};
  let flag = "green";
  if (s.chequered) flag = "chequered";
  else if (s.safety_car && s.safety_car !== "none") flag = s.safety_car === "virtual" ? "vsc" : "sc";
  else if ((s.flags || []).includes("red")) flag = "red";
  else if ((s.flags || []).includes("yellow")) flag = "yellow";
  const flagText = { green: "Green", yellow: "Yellow", red: "Red", sc: "Safety car", vsc: "Virtual SC", chequered: "Chequered" }[flag];
  const item = (label, value, cls = "") => el("div", { class: cls }, el("small", {}, label), el("span", {}, value));
  root.replaceChildren(el("div", { class: "ov-header" },
    item("Track", s.track || "–", "track"),
    item("Session", s.session_type || "–", "session"),
    item("Lap", s.lap ? `${Math.min(s.lap, s.total_laps || s.lap)} / ${s.total_laps || "?"}` : "–", "lap"),
    item("Flag", flagText, `flag flag-${flag}`)));
}

function renderChampionship(table) {
  if (!table) return;
  const rows = (table.drivers || []).slice(0, options.rows).map((d) =>
    el("tr", { "data-driver": d.driver },
      el("td", { class: "num" }, String(d.position)),
      el("td", {}, bar(d.team)),
      el("td", { class: "code" }, surname(d.driver)),
      el("td", { class: "num points" }, String(d.points))));
  const held = (table.rounds_held || []).length;
  root.replaceChildren(
    el("div", { class: "ov-title" }, `${table.league} · ${held}/${(table.rounds || []).length}`),
    el("table", { class: "ov-champ" }, el("tbody", {}, ...rows)));
}

const render = { tower: renderTower, battle: renderBattle, header: renderHeader,
  "fastest-lap": () => renderFastest(false), championship: () => {} }[kind];

function onSession(data) {
  if (!data) return;
  if (data.session_uid && data.session_uid !== view.sessionUid) {
    view.sessionUid = data.session_uid;
    view.fastest = null;
  }
  view.session = data;
  if (kind === "header" || kind === "tower") render();
}

const state = document.querySelector("#overlay-state");
const live = new Live(
  {
    snapshot(data) {
      onSession(data.session);
      view.tower = data.tower || [];
      onStandings(data.standings);
      render();
    },
    session: onSession,
    tower(rows) {
      view.tower = rows || [];
      if (kind === "tower" || kind === "battle") render();
    },
    standings: onStandings,
    league: (table) => { if (kind === "championship") renderChampionship(table); },
  },
  (connection) => {
    root.dataset.connection = connection;
    state.textContent = connection === "live" ? "" : `reconnecting (${connection})`;
    state.hidden = connection === "live";
  },
);
// No telemetry, no map: an overlay reads the session's messages only.
live.subscription = { ...live.subscription, cars: [], map: false };

async function loadLeague() {
  const response = await fetch("/api/league");
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    root.replaceChildren(el("div", { class: "ov-error" }, data.detail || `league: HTTP ${response.status}`));
    return;
  }
  renderChampionship(data);
}
if (kind === "championship") loadLeague();
