// Our own small canvas drawing: the track map and the rolling telemetry traces.

// A canvas sized to its box in device pixels, so lines stay sharp on any screen.
function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(width * ratio));
  const h = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

// The map and the traces only change their data here; `draw()` is the caller's to schedule
// (once per animation frame), so a message never waits behind a redraw.
export class TrackMap {
  constructor(canvas) {
    this.canvas = canvas;
    this.outline = []; // the bridge's: the path of one car, drawn as the circuit
    this.cars = [];
    this.bounds = [Infinity, -Infinity, Infinity, -Infinity];
    this.styleOf = () => ({});
    // The circuit is thousands of wide round-joined segments: drawn once into its own canvas
    // and copied each frame, redrawn only when it or the scale changes.
    this.track = document.createElement("canvas");
    this.trackKey = "";
  }

  setOutline(points, start = 0) {
    this.outline.length = Math.min(this.outline.length, start);
    for (const [x, z] of points) this.outline.push({ x, z });
  }

  update(positions, styleOf) {
    this.cars = positions;
    this.styleOf = styleOf;
  }

  // The pit-rejoin ghost: a dashed ring just behind the car it would rejoin behind
  // ({car_index, label}, or null for none).
  setGhost(ghost) {
    this.ghost = ghost;
  }

  reset() {
    this.outline = [];
    this.bounds = [Infinity, -Infinity, Infinity, -Infinity];
  }

  draw() {
    const { ctx, width, height } = fit(this.canvas);
    ctx.clearRect(0, 0, width, height);
    const points = this.outline.concat(this.cars);
    if (!points.length) return;
    // The view only grows (until a reset): once the circuit is known the scale holds still,
    // and so does the cached circuit layer.
    let [minX, maxX, minZ, maxZ] = this.bounds;
    for (const p of points) {
      minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x);
      minZ = Math.min(minZ, p.z); maxZ = Math.max(maxZ, p.z);
    }
    this.bounds = [minX, maxX, minZ, maxZ];
    const pad = 24;
    const scale = Math.min((width - 2 * pad) / (maxX - minX || 1), (height - 2 * pad) / (maxZ - minZ || 1));
    const ox = (width - (maxX - minX) * scale) / 2;
    const oz = (height - (maxZ - minZ) * scale) / 2;
    const sx = (x) => ox + (x - minX) * scale;
    const sz = (z) => oz + (z - minZ) * scale;
    if (this.outline.length > 1) {
      const key = [this.canvas.width, this.canvas.height, minX, maxX, minZ, maxZ, this.outline.length].join();
      if (key !== this.trackKey) {
        this.trackKey = key;
        this.track.width = this.canvas.width;
        this.track.height = this.canvas.height;
        const layer = this.track.getContext("2d");
        layer.setTransform(this.canvas.width / width, 0, 0, this.canvas.height / height, 0, 0);
        layer.lineJoin = "round";
        layer.lineCap = "round";
        layer.strokeStyle = "#2b313c";
        layer.lineWidth = 12;
        layer.beginPath();
        this.outline.forEach((p, i) => (i ? layer.lineTo(sx(p.x), sz(p.z)) : layer.moveTo(sx(p.x), sz(p.z))));
        layer.stroke();
        layer.strokeStyle = "#4a5362";
        layer.lineWidth = 2;
        layer.stroke();
      }
      ctx.drawImage(this.track, 0, 0, width, height);
    }
    const radius = Math.max(7, Math.min(13, width / 70));
    ctx.font = `700 ${Math.round(radius * 1.05)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    // Leaders drawn last, so they sit on top where cars bunch up.
    const ordered = [...this.cars].map((p) => ({ p, s: this.styleOf(p.car_index) }))
      .sort((a, b) => (b.s.position || 99) - (a.s.position || 99));
    for (const { p, s } of ordered) {
      ctx.beginPath();
      ctx.arc(sx(p.x), sz(p.z), radius, 0, Math.PI * 2);
      ctx.fillStyle = s.colour;
      ctx.fill();
      ctx.lineWidth = s.selected ? 3 : 1.5;
      ctx.strokeStyle = s.selected ? "#ffffff" : "#0b0d12";
      ctx.stroke();
      ctx.fillStyle = "#0b0d12";
      ctx.fillText(String(s.position || ""), sx(p.x), sz(p.z) + 0.5);
    }
    const anchor = this.ghost && this.cars.find((p) => p.car_index === this.ghost.car_index);
    if (anchor) {
      const gx = sx(anchor.x) + radius * 2.2;
      const gz = sz(anchor.z) + radius * 2.2;
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffffff";
      ctx.beginPath();
      ctx.arc(gx, gz, radius, 0, Math.PI * 2);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#ffffff";
      ctx.fillText(this.ghost.label, gx, gz + 0.5);
    }
  }
}

export const LANES = [
  { key: "speed_kph", label: "Speed", unit: "km/h", min: 0, max: 360, colour: "#4fc3f7" },
  { key: "throttle", label: "Throttle", unit: "", min: 0, max: 1, colour: "#66bb6a" },
  { key: "brake", label: "Brake", unit: "", min: 0, max: 1, colour: "#ef5350" },
  { key: "gear", label: "Gear", unit: "", min: 0, max: 8, colour: "#ffca28", step: true },
  { key: "engine_rpm", label: "RPM", unit: "", min: 0, max: 13500, colour: "#ba68c8" },
];

export class Traces {
  constructor(canvas, windowS = 20) {
    this.canvas = canvas;
    this.windowS = windowS;
    this.samples = []; // {t, values}
  }

  clear() {
    this.samples = [];
  }

  push(t, values) {
    if (t === null || t === undefined || !values) return;
    const last = this.samples[this.samples.length - 1];
    if (last && t < last.t) this.samples = []; // the clock went back: a new source
    this.samples.push({ t, values });
    while (this.samples.length && this.samples[0].t < t - this.windowS) this.samples.shift();
  }

  draw() {
    const { ctx, width, height } = fit(this.canvas);
    ctx.clearRect(0, 0, width, height);
    const labelW = Math.min(90, width * 0.14);
    const laneH = height / LANES.length;
    const now = this.samples.length ? this.samples[this.samples.length - 1].t : 0;
    const x = (t) => labelW + ((t - (now - this.windowS)) / this.windowS) * (width - labelW - 6);
    const fontPx = Math.max(11, Math.min(26, laneH / 4.5));
    const latest = this.samples.length ? this.samples[this.samples.length - 1].values : {};
    ctx.textBaseline = "middle";
    LANES.forEach((lane, i) => {
      const top = i * laneH + 4;
      const h = laneH - 8;
      ctx.fillStyle = "#151922";
      ctx.fillRect(labelW, top, width - labelW - 6, h);
      ctx.textAlign = "left";
      ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
      ctx.fillStyle = "#9aa3b2";
      ctx.fillText(lane.label, 4, top + h / 2 - fontPx * 0.6);
      const value = latest[lane.key];
      if (value !== undefined && value !== null) {
        ctx.font = `700 ${fontPx * 1.1}px system-ui, sans-serif`;
        ctx.fillStyle = lane.colour;
        const shown = lane.max <= 1 ? `${Math.round(value * 100)}%` : String(Math.round(value));
        ctx.fillText(shown, 4, top + h / 2 + fontPx * 0.65);
      }
      const y = (v) => top + h - ((Math.min(Math.max(v, lane.min), lane.max) - lane.min) / (lane.max - lane.min)) * h;
      ctx.strokeStyle = lane.colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let started = false;
      let prevY = 0;
      for (const s of this.samples) {
        const v = s.values[lane.key];
        if (v === undefined || v === null) continue;
        if (!started) { ctx.moveTo(x(s.t), y(v)); started = true; }
        else {
          if (lane.step) ctx.lineTo(x(s.t), prevY);
          ctx.lineTo(x(s.t), y(v));
        }
        prevY = y(v);
      }
      ctx.stroke();
    });
  }
}
