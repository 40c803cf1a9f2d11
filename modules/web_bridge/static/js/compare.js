// The compare page: two laps of any drivers, speed/throttle/brake over distance and the delta.
// Laps come from /api/analysis/laps; the live session is polled, so the choice "fastest" and
// the lap lists follow the race as laps complete. Plotly is window.Plotly, served by the bridge.
import { lapTime } from "./format.js";

const POLL_MS = 3000;
const recordingSelect = document.getElementById("recording");
const lapSelects = [document.getElementById("lap-a"), document.getElementById("lap-b")];
const statusLine = document.getElementById("status");
const chart = document.getElementById("chart");
const times = document.getElementById("times");
let lapsSignature = "";
let comparedSignature = "";

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.hidden = !text;
  statusLine.classList.toggle("error", isError);
}

async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return body;
}

async function loadRecordings() {
  const list = await getJson("/api/analysis/recordings");
  const options = [];
  if (list.live.length) options.push(["live", `live: ${list.live[list.live.length - 1]}`]);
  for (const name of list.recordings) options.push([name, name]);
  const chosen = recordingSelect.value;
  recordingSelect.replaceChildren(
    ...options.map(([value, text]) => new Option(text, value, false, value === chosen)),
  );
  if (!options.length) say("No recordings yet: start the recorder (admin page).");
}

function fillLaps(laps) {
  const byDriver = new Map();
  for (const lap of laps) {
    if (!byDriver.has(lap.driver)) byDriver.set(lap.driver, []);
    byDriver.get(lap.driver).push(lap);
  }
  lapSelects.forEach((select, which) => {
    const keep = select.value;
    const groups = [];
    for (const [driver, own] of byDriver) {
      const group = document.createElement("optgroup");
      group.label = driver;
      const any = own[0];
      group.append(new Option(`${driver} fastest`, `${any.car}-fastest@${any.session_uid}`));
      for (const lap of own) {
        const mark = lap.valid ? "" : " (deleted)";
        group.append(new Option(`${driver} lap ${lap.lap} ${lapTime(lap.lap_time_s * 1000)}${mark}`, lap.key));
      }
      groups.push(group);
    }
    select.replaceChildren(...groups);
    const values = [...select.options].map((o) => o.value);
    if (values.includes(keep)) select.value = keep;
    else {
      // First visit: the fastest laps of the first two drivers.
      const fastest = values.filter((v) => v.includes("-fastest@"));
      select.value = fastest[Math.min(which, fastest.length - 1)] || values[0] || "";
    }
  });
}

function draw(data) {
  const colours = ["#3d9bff", "#ff4d4f"];
  const traces = [];
  const rows = [["speed", "y"], ["throttle", "y2"], ["brake", "y3"]];
  data.laps.forEach((lap, i) => {
    rows.forEach(([key, axis], row) => {
      traces.push({
        x: data.distance, y: lap[key], yaxis: axis, name: data.names[i], legendgroup: data.names[i],
        showlegend: row === 0, line: { color: colours[i], width: 1.5 }, type: "scatter", mode: "lines",
      });
    });
  });
  traces.push({
    x: data.distance, y: data.delta, yaxis: "y4", name: `delta ${data.names[1]} to ${data.names[0]}`,
    line: { color: "#e8ebf1" }, type: "scatter", mode: "lines",
  });
  const axis = (title, domain) => ({ title: { text: title }, domain, gridcolor: "#232936", zeroline: false });
  Plotly.react(chart, traces, {
    paper_bgcolor: "#12161e", plot_bgcolor: "#12161e", font: { color: "#e8ebf1" },
    margin: { l: 60, r: 20, t: 30, b: 40 }, height: 720, legend: { orientation: "h" },
    xaxis: { title: { text: "distance (m)" }, gridcolor: "#232936", anchor: "y4" },
    yaxis: axis("speed km/h", [0.62, 1]), yaxis2: axis("throttle %", [0.42, 0.6]),
    yaxis3: axis("brake %", [0.22, 0.4]), yaxis4: axis("delta s", [0, 0.2]),
  }, { responsive: true, displaylogo: false });
  times.textContent = data.lap_times_s.map((s) => lapTime(s * 1000)).join(" / ");
  chart.dataset.rendered = String(Number(chart.dataset.rendered || 0) + 1);
}

async function compare(force = false) {
  const [a, b] = lapSelects.map((s) => s.value);
  if (!a || !b) return;
  const signature = `${recordingSelect.value}|${a}|${b}|${lapsSignature}`;
  if (!force && signature === comparedSignature) return;
  comparedSignature = signature;
  try {
    const query = new URLSearchParams({ recording: recordingSelect.value, a, b });
    draw(await getJson(`/api/analysis/compare?${query}`));
    say("");
  } catch (error) {
    say(`Cannot compare: ${error.message}`, true);
  }
}

async function refresh() {
  if (!recordingSelect.value) {
    await loadRecordings().catch((error) => say(`Recordings: ${error.message}`, true));
    if (!recordingSelect.value) return;
  }
  try {
    const body = await getJson(`/api/analysis/laps?recording=${encodeURIComponent(recordingSelect.value)}`);
    const signature = body.laps.map((lap) => lap.key).join(",");
    if (signature !== lapsSignature) {
      lapsSignature = signature;
      fillLaps(body.laps);
      if (!body.laps.length) say("No completed laps yet.");
    }
    await compare();
  } catch (error) {
    say(`Laps: ${error.message}`, true);
  }
}

recordingSelect.addEventListener("change", () => { lapsSignature = ""; refresh(); });
lapSelects.forEach((select) => select.addEventListener("change", () => compare(true)));
refresh();
setInterval(() => { if (recordingSelect.value === "live" || !recordingSelect.value) refresh(); }, POLL_MS);
