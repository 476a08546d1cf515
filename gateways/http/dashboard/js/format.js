// Small helpers for building the page: elements, numbers, times, units.

/** Creates an element: h("td.num", { title }, child, ...). Strings become text (never HTML). */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length > 0) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const UNITS = { pm: "µg/m³", co2: "ppm", voc: "ppb", tmp: "°C", hum: "%", allpollu: "%" };
export const NAMES = { pm: "PM2.5", co2: "CO₂", voc: "VOC", tmp: "Temperature", hum: "Humidity", allpollu: "Pollution index" };
export const CHANNELS = ["pm", "co2", "voc", "tmp", "hum", "allpollu"];

/** A number with sensible precision (or "–"). */
export function num(v, digits) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  const d = digits ?? (Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2);
  return v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: 0 });
}

/** Epoch ms as a local date and time. */
export function time(ms) {
  if (typeof ms !== "number") return "–";
  const d = new Date(ms);
  return `${d.toLocaleDateString("en-CA")} ${d.toLocaleTimeString("en-GB", { hour12: false })}`;
}

/** Epoch ms as HH:MM:SS. */
export function clock(ms) {
  return typeof ms === "number" ? new Date(ms).toLocaleTimeString("en-GB", { hour12: false }) : "–";
}

/** A duration in ms as "3 min", "2.5 h", "4 d". */
export function duration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "–";
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(ms)} ms`;
  if (a < 60_000) return `${num(ms / 1000, 1)} s`;
  if (a < 3_600_000) return `${num(ms / 60_000, 1)} min`;
  if (a < 86_400_000) return `${num(ms / 3_600_000, 1)} h`;
  return `${num(ms / 86_400_000, 1)} d`;
}

/** Shows a short message at the bottom of the page. */
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.className = "toast"), kind === "error" ? 8000 : 4000);
}

/** A stable colour per name (nodes in the shard grid). */
export function colorOf(name) {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  return `hsl(${(hash >>> 0) % 360} 55% 52%)`;
}

/** What an alert says, in a line. */
export function describeAlert(a) {
  const unit = UNITS[a.channel] ?? "";
  switch (a.kind) {
    case "event.start":
      return `${NAMES[a.channel] ?? a.channel} ${num(a.value)} ${unit} crossed ${num(a.threshold)} (${a.ruleId})`;
    case "event.end":
      return `${NAMES[a.channel] ?? a.channel} back under ${num(a.threshold)} after ${duration(a.durationMs)}, peak ${num(a.peak)} ${unit}`;
    case "offline":
      return "device went silent";
    case "online":
      return "device is back";
    case "anomaly":
      return `${NAMES[a.channel] ?? a.channel} ${a.reason ?? "anomaly"}: ${num(a.value)} (expected ${num(a.expected)})`;
    case "forecast":
      return `${NAMES[a.channel] ?? a.channel} forecast to reach ${num(a.value)} ${unit} (${a.ruleId})`;
    default:
      return a.kind;
  }
}
