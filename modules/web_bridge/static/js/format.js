// Shared formatting and the team palette (the teams' published colours).

export const TEAM_COLOURS = {
  "McLaren": "#ff8000",
  "Red Bull Racing": "#3671c6",
  "Ferrari": "#e8002d",
  "Mercedes": "#27f4d2",
  "Williams": "#64c4ff",
  "RB": "#6692ff",
  "Aston Martin": "#229971",
  "Haas": "#b6babd",
  "Sauber": "#52e252",
  "Alpine": "#ff87bc",
  "Cadillac": "#c8a45a",
};

export function teamColour(team) {
  return TEAM_COLOURS[team] || "#8a8f98";
}

export const TYRE_LETTERS = { soft: "S", medium: "M", hard: "H", inter: "I", wet: "W" };

export function lapTime(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms <= 0) return "";
  const minutes = Math.floor(ms / 60000);
  const rest = ms - minutes * 60000;
  const seconds = Math.floor(rest / 1000);
  const millis = Math.round(rest % 1000);
  return `${minutes}:${String(seconds).padStart(2, "0")}.${String(millis).padStart(3, "0")}`;
}

export function gap(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  if (ms < 0) return "";
  return `+${(ms / 1000).toFixed(3)}`;
}

// "Lando NORRIS" -> "NORRIS": the tower shows surnames, the game spells them in capitals.
export function surname(name) {
  const parts = String(name || "").trim().split(/\s+/);
  const upper = parts.filter((p) => p.length > 1 && p === p.toUpperCase());
  return upper.length ? upper.join(" ") : parts[parts.length - 1] || "";
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}
