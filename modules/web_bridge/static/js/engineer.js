// The engineer page: one car (menu or ?car=N), drawn from the engineer's pictures at the
// chosen rate. What the stream says is unknown (null) is shown as "unknown", never as 0.

import { gap, lapTime, surname } from "./format.js";
import { Live } from "./live.js";

const $ = (selector) => document.querySelector(selector);
const UNKNOWN = "unknown";
const CORNERS = ["rl", "rr", "fl", "fr"];
const params = new URLSearchParams(location.search);

const view = {
  car: params.has("car") ? Number(params.get("car")) : null,
  rateHz: Number(params.get("rate")) || 20,
  picture: null,
  rejoin: null,
  drawnAt: 0,
  timer: null,
  names: new Map(),
};
$("#eng-rate").value = String(view.rateHz);

function known(value) {
  return value !== null && value !== undefined && !(typeof value === "number" && !Number.isFinite(value));
}

// Text for a value, or "unknown" (with a class the page styles) when the stream has none.
// Only what changed is written: a rewrite of the same text is still a change to the DOM.
function show(node, value, format = (v) => String(v)) {
  const ok = known(value);
  const text = ok ? format(value) : UNKNOWN;
  if (node.textContent !== text) node.textContent = text;
  node.classList.toggle("unknown", !ok);
}

const fixed = (digits) => (v) => v.toFixed(digits);
const megajoules = (v) => (v / 1e6).toFixed(2);
const yesNo = (v) => (v ? "yes" : "no");
const signed = (ms) => `${ms >= 0 ? "+" : "−"}${(Math.abs(ms) / 1000).toFixed(3)}`;

function nameOf(index) {
  return surname(view.names.get(index) || `car ${index}`);
}

function fillCars(cars) {
  const select = $("#eng-car");
  const have = new Set([...select.options].map((o) => o.value));
  for (const [index, car] of Object.entries(cars)) {
    view.names.set(Number(index), car.driver || "");
    if (!have.has(index)) select.append(new Option(`${index}: ${surname(car.driver) || "car " + index}`, index));
  }
  if (view.car !== null) select.value = String(view.car);
}

function renderCar(picture, car) {
  show($("#eng-track"), picture.track || "–");
  show($("#eng-frame"), picture.frame);
  show($("#eng-lap"), car.lap, (lap) => `${lap} / ${picture.total_laps || "?"}`);
  show($("#eng-position"), car.position);
  show($("#eng-delta"), car.delta_to_best_ms, signed);
  show($("#eng-best"), car.best_lap_ms, lapTime);
  const tyres = car.tyres;
  show($("#eng-compound"), tyres.compound);
  show($("#eng-age"), tyres.age_laps);
  const target = Number($("#eng-target").value) || 70;
  CORNERS.forEach((corner, i) => {
    const row = document.querySelector(`tr[data-corner="${corner}"]`);
    show(row.querySelector(".wear"), tyres.wear_pct && tyres.wear_pct[i], fixed(1));
    show(row.querySelector(".trend"), tyres.wear_per_lap_pct && tyres.wear_per_lap_pct[i], fixed(2));
    let reach = null;
    if (tyres.wear_fit) {
      const [intercept, slope] = tyres.wear_fit[i];
      if (slope > 1e-9) reach = Math.ceil((target - intercept) / slope - 1e-9);
    }
    show(row.querySelector(".reach"), reach, (lap) => `lap ${lap}`);
    show(row.querySelector(".surface"), tyres.surface_c && tyres.surface_c[i], fixed(0));
    show(row.querySelector(".inner"), tyres.inner_c && tyres.inner_c[i], fixed(0));
  });
  show($("#eng-fuel"), car.fuel.in_tank_kg, fixed(2));
  show($("#eng-fuel-laps"), car.fuel.laps_left ?? car.fuel.game_remaining_laps, fixed(2));
  show($("#eng-laps-to-go"), car.fuel.laps_to_go);
  show($("#eng-ers-store"), car.ers.store_j, megajoules);
  show($("#eng-ers-deployed"), car.ers.deployed_this_lap_j, megajoules);
  show($("#eng-ers-harvested"), car.ers.harvested_this_lap_j, megajoules);
  show($("#eng-ers-mode"), car.ers.mode);
  show($("#eng-damage"), car.damage, (d) => {
    const hurt = Object.entries(d).filter(([, v]) => v);
    return hurt.length ? hurt.map(([k, v]) => `${k.replace(/_damage$/, "")} ${v}%`).join(", ") : "none";
  });
  const aero = car.aero || {};
  show($("#eng-aero-mode"), aero.active_aero_mode, (m) => (m ? "low drag" : "high downforce"));
  show($("#eng-aero-available"), aero.active_aero_available, yesNo);
  show($("#eng-overtake-available"), aero.overtake_available, yesNo);
  show($("#eng-overtake-active"), aero.overtake_active, yesNo);
  show($("#eng-overtake-distance"), aero.overtake_activation_distance_m, fixed(0));
  for (const side of ["ahead", "behind"]) {
    const row = $(`#eng-${side}`);
    const other = car[side];
    show(row.querySelector(".driver"), other && other.driver, surname);
    show(row.querySelector(".gap"), other && other.gap_ms, gap);
    show(row.querySelector(".trend"), other && other.gap_trend_ms_per_lap, signed);
    show(row.querySelector(".tyre"), other && other.compound);
    show(row.querySelector(".age"), other && other.tyre_age_laps);
  }
  renderRejoin(view.rejoin && view.rejoin.cars ? view.rejoin.cars[String(view.car)] : car.rejoin);
}

function renderRejoin(rejoin) {
  show($("#eng-rejoin-position"), rejoin && rejoin.position, (p) => `P${p}`);
  show($("#eng-pit-loss"), rejoin && rejoin.pit_loss_s, fixed(1));
  show($("#eng-pit-loss-source"), rejoin && rejoin.pit_loss_source);
  const near = (n) => `${nameOf(n.car_index)} ${(n.gap_ms / 1000).toFixed(1)} s`;
  show($("#eng-rejoin-ahead"), rejoin && rejoin.ahead, near);
  show($("#eng-rejoin-behind"), rejoin && rejoin.behind, near);
}

// Draw now if the rate allows, else once when it does: the newest picture, never a queue.
function schedule() {
  if (view.timer !== null) return;
  // A quarter period of slack: pictures sent at the same rate arrive with jitter, and each
  // should be drawn as it comes, not held back to the next beat.
  const wait = view.drawnAt + 750 / view.rateHz - performance.now();
  if (wait <= 0) return draw();
  view.timer = setTimeout(() => { view.timer = null; draw(); }, wait);
}

function draw() {
  view.drawnAt = performance.now();
  const picture = view.picture;
  if (!picture) return;
  fillCars(picture.cars || {});
  const car = view.car !== null && picture.cars ? picture.cars[String(view.car)] : null;
  document.body.classList.toggle("no-car", !car);
  if (car) renderCar(picture, car);
}

new Live(
  {
    snapshot(data) {
      view.picture = data.engineer || null;
      view.rejoin = data.pit_rejoin || null;
      schedule();
    },
    engineer(data) { view.picture = data; schedule(); },
    // A lap's end, not a frame: its own panel at once, the rest waits for its picture.
    pit_rejoin(data) {
      view.rejoin = data;
      if (view.car !== null && data && data.cars) renderRejoin(data.cars[String(view.car)]);
    },
  },
  (state) => {
    const node = $("#connection");
    node.textContent = state;
    node.className = `connection ${state}`;
  },
);

$("#eng-car").addEventListener("change", (e) => {
  view.car = e.target.value === "" ? null : Number(e.target.value);
  const url = new URL(location.href);
  if (view.car === null) url.searchParams.delete("car"); else url.searchParams.set("car", String(view.car));
  history.replaceState(null, "", url);
  draw();
});
$("#eng-rate").addEventListener("change", (e) => {
  view.rateHz = Math.min(60, Math.max(1, Number(e.target.value) || 20));
});
$("#eng-target").addEventListener("change", () => draw());
