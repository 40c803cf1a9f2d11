// The league admin page: attach finished sessions to rounds, enter stewards' decisions; the
// bridge recomputes the standings and shows them here (and on /league, the overlays).

import { el } from "./format.js";

const $ = (selector) => document.querySelector(selector);
const DECISION = {
  time_penalty: (v) => `+${v} s`,
  positions: (v) => `${v} places dropped`,
  points: (v) => `${v} points deducted`,
  dsq: () => "disqualified",
};

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

function clear(form) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  form.querySelectorAll("input, select").forEach((i) => i.classList.remove("invalid"));
}

// {"detail": [{"loc": [..., field], "msg": text}]} next to its field; anything else below.
function showErrors(form, result, node) {
  clear(form);
  const detail = result.data.detail;
  if (Array.isArray(detail)) {
    for (const item of detail) {
      const field = item.loc[item.loc.length - 1];
      const slot = form.querySelector(`.field-error[data-for="${field}"]`);
      if (slot) {
        slot.textContent = item.msg;
        const input = form.querySelector(`[name="${field}"]`);
        if (input) input.classList.add("invalid");
      } else node.textContent = `${field}: ${item.msg}`;
    }
  } else node.textContent = detail || `failed (HTTP ${result.status})`;
  node.className = "result bad";
}

function options(select, values) {
  const keep = select.value;
  select.replaceChildren(...values.map(([value, text]) => new Option(text, value)));
  if (values.some(([value]) => value === keep)) select.value = keep;
}

function render(table) {
  $("#league-name").textContent = table.league;
  for (const select of document.querySelectorAll("select[name=round]")) {
    options(select, table.rounds.map((r) => [r, r]));
  }
  options($("#decision-form select[name=driver]"), table.drivers_known.map((d) => [d, d]));
  $("#attached tbody").replaceChildren(...table.attached.map((a) =>
    el("tr", { "data-session": a.session_uid }, el("td", {}, a.round), el("td", {}, a.kind), el("td", {}, a.session_uid))));
  $("#decisions tbody").replaceChildren(...table.decisions.map((d) =>
    el("tr", {}, el("td", {}, d.round), el("td", {}, d.driver), el("td", {}, DECISION[d.kind](d.value)),
      el("td", {}, d.why), el("td", {}, d.by), el("td", {}, d.at))));
  $("#standings tbody").replaceChildren(...table.drivers.map((d) =>
    el("tr", { "data-driver": d.driver }, el("td", { class: "pos" }, String(d.position)),
      el("td", {}, d.driver), el("td", { class: "num" }, String(d.points)))));
}

async function load() {
  const league = await call("GET", "/api/league");
  if (!league.ok) {
    $("#league-name").textContent = league.data.detail || `league: HTTP ${league.status}`;
    return;
  }
  render(league.data);
  const sessions = await call("GET", "/api/results");
  const attached = new Set(league.data.attached.map((a) => a.session_uid));
  const list = sessions.ok ? sessions.data : [];
  options($("#attach-form select[name=session_uid]"), list
    .filter((s) => s.final && !attached.has(s.session_uid))
    .map((s) => [s.session_uid, `${s.session_type} at ${s.track || "?"} (${s.session_uid})`]));
  if (!sessions.ok) $("#attach-result").textContent = sessions.data.detail || "no sessions from the lap timer";
}

$("#attach-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { round: form.round.value, session_uid: form.session_uid.value, kind: form.kind.value, by: form.by.value || "admin" };
  const result = await call("POST", "/api/league/attach", body);
  if (result.ok) {
    clear(form);
    $("#attach-result").textContent = `Session ${body.session_uid} attached to ${body.round} as ${body.kind}`;
    $("#attach-result").className = "result good";
    load();
  } else showErrors(form, result, $("#attach-result"));
});

$("#decision-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {
    round: form.round.value, driver: form.driver.value, kind: form.kind.value,
    value: Number(form.value.value || 0), by: form.by.value, why: form.why.value,
    session_uid: form.session_uid.value,
  };
  const result = await call("POST", "/api/league/decisions", body);
  if (result.ok) {
    clear(form);
    const d = result.data;
    $("#decision-result").textContent = `Decision ${d.id}: ${d.driver} ${DECISION[d.kind](d.value)} (${d.by}, ${d.at})`;
    $("#decision-result").className = "result good";
    load();
  } else showErrors(form, result, $("#decision-result"));
});

load();
