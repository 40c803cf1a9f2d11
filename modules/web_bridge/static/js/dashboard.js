// The dashboard: one WebSocket, each message updates its panel.

import { Traces, TrackMap } from "./canvas.js";
import { el, gap, lapTime, surname, teamColour, TYRE_LETTERS } from "./format.js";
import { Live } from "./live.js";

const $ = (selector) => document.querySelector(selector);
const MAX_FEED = 40;
const MAX_LAPS = 12;
const MAX_LOG = 120;

const view = {
  tower: [],
  drivers: new Map(), // car_index -> {driver, team}
  selected: null,
  bestOverall: null,
};

const map = new TrackMap($("#map"));
const traces = new Traces($("#traces"));

// Canvases redraw at most once per animation frame, after the messages of that frame have
// updated the DOM: 20 Hz telemetry and a lap arriving together cost one draw, and the lap's
// row never waits behind one.
const stale = new Set();
function redraw(...canvases) {
  if (!stale.size) requestAnimationFrame(() => {
    for (const canvas of stale) canvas.draw();
    stale.clear();
  });
  for (const canvas of canvases) stale.add(canvas);
}

function colourOf(carIndex) {
  const row = view.tower.find((r) => r.car_index === carIndex);
  const team = row ? row.team : (view.drivers.get(carIndex) || {}).team;
  return teamColour(team);
}

function renderSession(session) {
  if (!session) return;
  $("#track").textContent = session.track || "–";
  $("#session-type").textContent = session.session_type || "–";
  const total = session.total_laps;
  $("#lap").textContent = session.lap ? `${Math.min(session.lap, total || session.lap)} / ${total || "?"}` : "–";
  $("#weather").textContent = session.weather || "–";
  const temps = [session.track_temperature_c, session.air_temperature_c];
  $("#temps").textContent = temps.every((t) => t !== null && t !== undefined) ? `${temps[0]}° / ${temps[1]}°` : "–";
  const flags = $("#flags");
  let flag = "green";
  if (session.chequered) flag = "chequered";
  else if (session.safety_car && session.safety_car !== "none") flag = session.safety_car === "virtual" ? "vsc" : "sc";
  else if ((session.flags || []).includes("red")) flag = "red";
  else if ((session.flags || []).includes("yellow")) flag = "yellow";
  flags.textContent = { green: "Green", yellow: "Yellow", red: "Red", sc: "Safety car", vsc: "Virtual SC", chequered: "Chequered" }[flag];
  flags.className = `flag flag-${flag}`;
}

function towerRow(row) {
  const tr = el("tr", { "data-car": String(row.car_index ?? ""), "data-driver": row.driver || "" });
  tr.append(
    el("td", { class: "pos" }),
    el("td", { class: "team-bar" }),
    el("td", { class: "name" }),
    el("td", { class: "gap num" }),
    el("td", { class: "int num" }),
    el("td", { class: "last num" }),
    el("td", { class: "best num" }),
    // Qualifying: the best of each part (Q1..Q3), shown when the session has parts.
    ...[1, 2, 3].map((part) => el("td", { class: `part q${part} num`, hidden: "" })),
    el("td", { class: "tyre" }),
    el("td", { class: "pits num" }),
  );
  tr.addEventListener("click", () => select(row.car_index));
  return tr;
}

function renderTower(rows) {
  view.tower = rows || [];
  const body = $("#tower tbody");
  $("#tower-empty").hidden = view.tower.length > 0;
  const existing = new Map([...body.children].map((tr) => [tr.dataset.car + "|" + tr.dataset.driver, tr]));
  const best = Math.min(...view.tower.map((r) => r.best_lap_ms || Infinity));
  const parts = Math.max(0, ...view.tower.map((r) => (r.best_by_part_ms || []).length));
  const partBest = [0, 1, 2].map((i) => Math.min(...view.tower.map((r) => (r.best_by_part_ms || [])[i] || Infinity)));
  $("#tower thead").querySelectorAll("th.part").forEach((th, i) => { th.hidden = i >= parts; });
  $("#tower").classList.toggle("with-parts", parts > 0);
  const fragment = [];
  for (const row of view.tower) {
    const key = String(row.car_index ?? "") + "|" + (row.driver || "");
    const tr = existing.get(key) || towerRow(row);
    existing.delete(key);
    const previous = Number(tr.dataset.position || 0);
    if (previous && row.position && row.position < previous) {
      tr.classList.remove("gained");
      void tr.offsetWidth; // restart the highlight animation
      tr.classList.add("gained");
    }
    tr.dataset.position = row.position ?? "";
    tr.classList.toggle("selected", row.car_index === view.selected);
    tr.classList.toggle("out", ["dnf", "retired", "dsq"].includes(row.status));
    tr.querySelector(".pos").textContent = row.position ?? "";
    tr.querySelector(".team-bar").style.background = teamColour(row.team);
    tr.querySelector(".name").textContent = surname(row.driver);
    tr.querySelector(".name").title = `${row.driver} (${row.team})`;
    const leader = row.position === 1;
    const out = ["dnf", "retired", "dsq"].includes(row.status);
    tr.querySelector(".gap").textContent = leader ? "Leader" : out ? "OUT" : gap(row.gap_ms);
    tr.querySelector(".int").textContent = leader || out ? "" : gap(row.interval_ms);
    tr.querySelector(".last").textContent = lapTime(row.last_lap_ms);
    const bestCell = tr.querySelector(".best");
    bestCell.textContent = lapTime(row.best_lap_ms);
    bestCell.classList.toggle("purple", row.best_lap_ms && row.best_lap_ms === best);
    tr.querySelectorAll("td.part").forEach((cell, i) => {
      const time = (row.best_by_part_ms || [])[i];
      cell.hidden = i >= parts;
      cell.textContent = lapTime(time);
      cell.classList.toggle("purple", Boolean(time) && time === partBest[i]);
    });
    const tyre = tr.querySelector(".tyre");
    tyre.textContent = TYRE_LETTERS[row.tyre] || "";
    tyre.className = `tyre tyre-${row.tyre || "none"}`;
    tr.querySelector(".pits").textContent = row.in_pit ? "PIT" : row.pit_stops ?? "";
    fragment.push(tr);
  }
  fragment.forEach((tr, i) => {
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
  });
  for (const tr of existing.values()) tr.remove();
  if (view.selected === null && view.tower.length) select(view.tower[0].car_index);
  fillSelect();
}

function fillSelect() {
  const select_ = $("#car-select");
  const cars = view.tower.filter((r) => r.car_index !== null && r.car_index !== undefined);
  const wanted = cars.map((r) => `${r.car_index}:${surname(r.driver)}`).sort().join(",");
  if (select_.dataset.cars === wanted) return;
  select_.dataset.cars = wanted;
  select_.replaceChildren(...[...cars].sort((a, b) => a.car_index - b.car_index)
    .map((r) => el("option", { value: String(r.car_index) }, `${surname(r.driver)}`)));
  if (view.selected !== null) select_.value = String(view.selected);
}

function select(carIndex) {
  if (carIndex === null || carIndex === undefined || carIndex === view.selected) return;
  view.selected = carIndex;
  traces.clear();
  redraw(traces);
  $("#car-select").value = String(carIndex);
  live.subscribe([carIndex]);
  for (const tr of $("#tower tbody").children) tr.classList.toggle("selected", tr.dataset.car === String(carIndex));
  showGhost();
}

function addFeed(list, item, max) {
  list.prepend(item);
  while (list.children.length > max) list.lastChild.remove();
}

function renderEvent(event) {
  const kind = { FTLP: "purple", PENA: "warn", RTMT: "bad", SCAR: "warn", CHQF: "flag", RDFL: "bad", OVTK: "info" }[event.code] || "";
  addFeed($("#events"), el("li", { class: `event ${kind}`, "data-code": event.code },
    el("span", { class: "code" }, event.code), el("span", {}, event.text)), MAX_FEED);
}

function renderLap(lap) {
  const text = `${surname(lap.driver)} L${lap.lap} ${lapTime(lap.lap_time_ms)}`;
  const item = el("li", { class: `lap ${lap.valid ? "" : "invalid"} ${lap.source}`, "data-lap-id": String(lap.id ?? ""), "data-driver": lap.driver },
    el("span", { class: "swatch", style: `background:${teamColour(lap.team)}` }),
    el("span", { class: "who" }, surname(lap.driver)),
    el("span", { class: "num" }, lapTime(lap.lap_time_ms)),
    el("span", { class: "muted" }, lap.source === "manual" ? "manual" : `L${lap.lap}${lap.valid ? "" : " ✕"}`));
  item.title = text;
  addFeed($("#laps"), item, MAX_LAPS);
}

function renderBoard(table) {
  if (!table || !String(table.session_uid || "").startsWith("manual")) return;
  $("#board-track").textContent = table.track ? `· ${table.track}` : "";
  $("#manual-board tbody").replaceChildren(...(table.rows || []).map((row) =>
    el("tr", { "data-driver": row.driver },
      el("td", { class: "pos" }, String(row.position ?? "")),
      el("td", { class: "name" }, row.driver),
      el("td", { class: "num" }, lapTime(row.best_lap_ms)),
      el("td", { class: "num muted" }, row.laps === undefined ? "" : `${row.laps} lap${row.laps === 1 ? "" : "s"}`))));
}

// The session's table: its qualifying part and whether its results stand ("Q3 · final").
function renderTableState(table) {
  if (!table || String(table.session_uid || "").startsWith("manual")) return;
  if (view.sessionUid && String(table.session_uid) !== String(view.sessionUid)) return;
  const state = $("#tower-state");
  state.textContent = [table.part, table.final ? "final" : "provisional"].filter(Boolean).join(" · ");
  state.dataset.final = table.final ? "yes" : "no";
}

function renderLog(record) {
  const level = String(record.levelname || "").toLowerCase();
  const time = String(record.timestamp || "").slice(11, 19);
  addFeed($("#log"), el("li", { class: `log-${level}` },
    el("span", { class: "muted" }, time), el("span", { class: "who" }, record.name || ""),
    el("span", {}, record.message || "")), MAX_LOG);
}

function renderTelemetry(data, message) {
  if (data.positions) {
    map.update(data.positions, (car) => {
      const row = view.tower.find((r) => r.car_index === car);
      return { colour: colourOf(car), position: row ? row.position : null, selected: car === view.selected };
    });
    redraw(map);
  }
  const values = data.cars && data.cars[String(view.selected)];
  if (values && Object.keys(values).length) {
    traces.push(message.t, values);
    redraw(traces);
    $("#trace-now").textContent = `${Math.round(values.speed_kph)} km/h · gear ${values.gear} · ${Math.round(values.engine_rpm)} rpm`;
  }
}

// Expected streams missing or gone quiet: "no data from telemetry_decoder since 12:01:03".
function renderInputs(inputs) {
  const problems = (inputs && inputs.problems) || [];
  const banner = $("#inputs-banner");
  banner.replaceChildren(...problems.map((text) => el("div", {}, text)));
  banner.hidden = problems.length === 0;
}

// Where the selected car would rejoin if it pitted now: a ghost behind that car on the map.
function showGhost() {
  const rejoin = view.rejoin && view.selected !== null && view.rejoin.cars
    ? view.rejoin.cars[String(view.selected)] : null;
  const ahead = rejoin && rejoin.ahead;
  map.setGhost(ahead ? { car_index: ahead.car_index, label: `P${rejoin.position}` } : null);
  const note = $("#ghost-note");
  if (note) note.textContent = rejoin ? `pit now: P${rejoin.position}` : "";
  redraw(map);
}

const live = new Live(
  {
    snapshot(data) {
      map.reset();
      map.setOutline(data.outline || []);
      redraw(map);
      renderSession(data.session);
      for (const d of data.drivers || []) view.drivers.set(d.car_index, d);
      renderTower(data.tower);
      $("#events").replaceChildren();
      (data.events || []).forEach(renderEvent);
      $("#laps").replaceChildren();
      (data.laps || []).forEach(renderLap);
      (data.boards || []).forEach(renderBoard);
      renderTableState(data.standings);
      $("#log").replaceChildren();
      (data.logs || []).forEach(renderLog);
      renderInputs(data.inputs);
      view.rejoin = data.pit_rejoin || null;
      showGhost();
    },
    session(data) {
      if (view.sessionUid && data.session_uid !== view.sessionUid) { map.reset(); redraw(map); }
      view.sessionUid = data.session_uid;
      renderSession(data);
    },
    drivers(data) { for (const d of data) view.drivers.set(d.car_index, d); },
    tower: renderTower,
    outline: (piece) => { map.setOutline(piece.points, piece.start); redraw(map); },
    standings: (table) => { renderBoard(table); renderTableState(table); },
    lap: renderLap,
    event: renderEvent,
    log: renderLog,
    inputs: renderInputs,
    telemetry: renderTelemetry,
    pit_rejoin: (data) => { view.rejoin = data; showGhost(); },
  },
  (state) => {
    const node = $("#connection");
    node.textContent = state;
    node.className = `connection ${state}`;
  },
);

$("#car-select").addEventListener("change", (e) => select(Number(e.target.value)));
window.addEventListener("resize", () => redraw(map, traces));

// The source: the newest live session unless the user picks a replay here (or by the bridge's
// SOURCE command); the bridge returns to live when a picked replay ends.
async function refreshSource() {
  const response = await fetch("/api/source");
  if (!response.ok) return;
  const state = await response.json();
  const menu = $("#source");
  const options = [["live", state.showing ? `live (${state.showing})` : "live (none)"]];
  for (const s of state.sources) {
    if (s.replay || s.producer !== state.showing) {
      options.push([s.producer, s.replay ? `replay ${s.producer}` : s.producer]);
    }
  }
  const key = options.map(([value, text]) => value + text).join("|");
  if (menu.dataset.key !== key) {
    menu.replaceChildren(...options.map(([value, text]) => new Option(text, value)));
    menu.dataset.key = key;
  }
  if (document.activeElement !== menu) menu.value = state.wanted;
  menu.classList.toggle("replay", state.replay);
}

$("#source").addEventListener("change", async (e) => {
  await fetch("/api/source", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ source: e.target.value }),
  });
  e.target.blur();
  refreshSource();
});
refreshSource();
setInterval(refreshSource, 2000);
