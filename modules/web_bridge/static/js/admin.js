// The admin page: forms post to /api and show each error next to its field.

import { el, lapTime } from "./format.js";

const $ = (selector) => document.querySelector(selector);

async function call(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

// FastAPI's validation errors and the bridge's own refusals share one shape:
// {"detail": [{"loc": ["body", field], "msg": text}]}; anything else is a general message.
function showErrors(form, result, resultNode) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  form.querySelectorAll("input").forEach((i) => i.classList.remove("invalid"));
  const detail = result.data.detail;
  if (Array.isArray(detail)) {
    for (const item of detail) {
      const field = item.loc[item.loc.length - 1];
      const node = form.querySelector(`.field-error[data-for="${field}"]`);
      if (node) {
        node.textContent = item.msg;
        const input = form.querySelector(`[name="${field}"]`);
        if (input) input.classList.add("invalid");
      } else {
        resultNode.textContent = `${field}: ${item.msg}`;
      }
    }
  } else {
    resultNode.textContent = detail || `failed (HTTP ${result.status})`;
  }
  resultNode.className = "result bad";
}

function done(form, resultNode, text) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  form.querySelectorAll("input").forEach((i) => i.classList.remove("invalid"));
  resultNode.textContent = text;
  resultNode.className = "result good";
}

$("#track-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const result = await call("PUT", "/api/track", { track: form.track.value });
  if (result.ok) done(form, $("#track-result"), `Track set to ${result.data.track}`);
  else showErrors(form, result, $("#track-result"));
});

$("#lap-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { driver: form.driver.value, time: form.time.value, team: form.team.value };
  const result = await call("POST", "/api/laps", body);
  if (result.ok) {
    done(form, $("#lap-result"), `Added lap ${result.data.lap} for ${result.data.driver}: ${lapTime(result.data.lap_time_ms)} (id ${result.data.id})`);
    form.time.value = "";
    loadLaps();
  } else showErrors(form, result, $("#lap-result"));
});

$("#record-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const filename = form.filename.value.trim();
  const result = await call("POST", "/api/recorder/record", filename ? { filename } : {});
  if (result.ok) done(form, $("#record-result"), `Recording to ${result.data.file}`);
  else showErrors(form, result, $("#record-result"));
  loadModules();
});

$("#record-stop").addEventListener("click", async () => {
  const form = $("#record-form");
  const result = await call("POST", "/api/recorder/stop");
  if (result.ok) done(form, $("#record-result"), "Recording stopped");
  else showErrors(form, result, $("#record-result"));
  loadModules();
});

async function loadLaps() {
  const session = $("#laps-session").value;
  const result = await call("GET", session ? `/api/laps?session_uid=${encodeURIComponent(session)}` : "/api/laps");
  const body = $("#lap-table tbody");
  if (!result.ok) {
    body.replaceChildren();
    $("#laps-result").textContent = result.data.detail || "no laps";
    return;
  }
  $("#laps-result").textContent = `${result.data.length} lap${result.data.length === 1 ? "" : "s"}`;
  body.replaceChildren(...result.data.slice(-200).reverse().map((lap) => {
    const remove = el("button", { type: "button", class: "secondary small" }, "Delete");
    remove.addEventListener("click", async () => {
      const r = await call("DELETE", `/api/laps/${lap.id}`);
      $("#laps-result").textContent = r.ok ? `Deleted lap ${lap.id}` : r.data.detail;
      loadLaps();
    });
    return el("tr", { "data-lap-id": String(lap.id) },
      el("td", {}, String(lap.id)), el("td", {}, lap.driver), el("td", {}, String(lap.lap)),
      el("td", { class: "num" }, lapTime(lap.lap_time_ms)), el("td", {}, lap.source), el("td", {}, remove));
  }));
}

function recorderSummary(status) {
  if (!status.recording) return `idle · saves to ${status.save_path || "?"}${status.file ? ` · last ${status.file}` : ""}`;
  return `recording ${status.file} · ${status.streams.length} streams · ${Math.round(status.duration_s)} s`;
}

async function loadModules() {
  const result = await call("GET", "/api/modules");
  if (!result.ok) return;
  const sessions = new Set();
  $("#modules").replaceChildren(...Object.entries(result.data).map(([name, status]) => {
    const up = status.up !== false;
    if (name === "web_bridge") (status.sessions || []).forEach((s) => sessions.add(s));
    const summary = name === "web_bridge"
      ? `${status.streams.length} streams, ${status.websocket.clients} WebSocket clients`
      : name === "lap_timer" ? (up ? `session ${status.current_session || "–"}, ${status.laps} laps, track ${status.track || "–"}` : status.error)
      : up ? recorderSummary(status) : status.error;
    return el("div", { class: `module ${up ? "up" : "down"}`, "data-module": name },
      el("strong", {}, name), el("span", {}, summary));
  }));
  const select = $("#laps-session");
  const current = select.value;
  const options = ["", ...sessions];
  if (select.dataset.options !== options.join(",")) {
    select.dataset.options = options.join(",");
    select.replaceChildren(...options.map((s) => el("option", { value: s }, s || "current session")));
    select.value = current;
  }
}

$("#laps-refresh").addEventListener("click", loadLaps);
$("#laps-session").addEventListener("change", loadLaps);
loadModules();
loadLaps();
setInterval(loadModules, 3000);
