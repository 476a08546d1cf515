// One channel over time with uPlot: the values, the device's rule thresholds for that channel (enter
// solid, exit dashed) and its pollution events as shaded spans.
import uPlot from "/assets/uplot/uPlot.esm.js";
import { NAMES, UNITS } from "./format.js";

/**
 * A chart in `el`. `points` are [tMs, value] (sorted); `band` optional [tMs, min, max] rows of
 * aggregates; `rules` the rules of this channel; `events` [{ from, to }] (ms). Returns
 * { add(tMs, value), update({ rules, events }), destroy() }.
 */
export function channelChart(el, channel, { points, rules = [], events = [], windowMs, endMs, height = 180 }) {
  let xs = points.map((p) => p[0] / 1000);
  // the window ends at the device's latest reading (or a later live one), whatever the data holds
  let endSec = Math.max(endMs ?? 0, points.length > 0 ? points[points.length - 1][0] : 0) / 1000;
  let ys = points.map((p) => p[1]);
  let state = { rules, events };
  const width = () => Math.max(300, el.clientWidth || 600);
  const opts = {
    width: width(),
    height,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: () => [endSec - windowMs / 1000, endSec] },
      y: {
        range: (_u, min, max) => {
          // keep the thresholds in view
          const limits = state.rules.flatMap((r) => [r.enter, r.exit]);
          const lo = Math.min(min ?? 0, ...limits);
          const hi = Math.max(max ?? 1, ...limits);
          const pad = (hi - lo) * 0.08 || 1;
          return [lo - pad, hi + pad];
        },
      },
    },
    axes: [{}, { label: `${NAMES[channel]} (${UNITS[channel]})`, size: 60 }],
    series: [{}, { label: NAMES[channel], stroke: "#1f6feb", width: 1.5, points: { show: false } }],
    hooks: {
      drawClear: [(u) => drawEvents(u, state.events)],
      draw: [(u) => drawThresholds(u, state.rules)],
    },
  };
  const plot = new uPlot(opts, [xs, ys], el);
  const clip = () => {
    if (windowMs === undefined || xs.length === 0) return;
    const cutoff = xs[xs.length - 1] - windowMs / 1000;
    let i = 0;
    while (i < xs.length && xs[i] < cutoff) i++;
    if (i > 0) {
      xs = xs.slice(i);
      ys = ys.slice(i);
    }
  };
  const onResize = () => plot.setSize({ width: width(), height });
  window.addEventListener("resize", onResize);
  return {
    add(tMs, value) {
      const t = tMs / 1000;
      if (xs.length > 0 && t <= xs[xs.length - 1]) return; // duplicates and late readings do not move the line
      xs.push(t);
      ys.push(value);
      endSec = Math.max(endSec, t);
      clip();
      plot.setData([xs, ys]);
    },
    update(next) {
      state = { ...state, ...next };
      plot.redraw();
    },
    destroy() {
      window.removeEventListener("resize", onResize);
      plot.destroy();
    },
  };
}

function drawThresholds(u, rules) {
  const { ctx, bbox } = u;
  ctx.save();
  for (const r of rules) {
    for (const [value, dash] of [
      [r.enter, []],
      [r.exit, [6, 4]],
    ]) {
      const y = u.valToPos(value, "y", true);
      if (!Number.isFinite(y) || y < bbox.top || y > bbox.top + bbox.height) continue;
      ctx.strokeStyle = r.direction === "below" ? "#0a7d6b" : "#c0392b";
      ctx.setLineDash(dash);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      if (dash.length === 0) {
        ctx.fillStyle = ctx.strokeStyle;
        ctx.font = `${11 * devicePixelRatio}px sans-serif`;
        ctx.textAlign = "right";
        ctx.fillText(`${r.id} ${r.direction} ${value}`, bbox.left + bbox.width - 4, y - 4);
      }
    }
  }
  ctx.restore();
}

function drawEvents(u, events) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.fillStyle = "rgba(192, 57, 43, 0.14)";
  for (const e of events) {
    const x0 = Math.max(bbox.left, u.valToPos(e.from / 1000, "x", true));
    const x1 = Math.min(bbox.left + bbox.width, u.valToPos((e.to ?? e.from) / 1000, "x", true));
    if (!(x1 > x0)) continue;
    ctx.fillRect(x0, bbox.top, x1 - x0, bbox.height);
  }
  ctx.restore();
}

/** A history chart over [fromMs, toMs]: mean with min and max per bucket. `rows` are { start, mean, min, max }. */
export function historyChart(el, channel, rows, fromMs, toMs, height = 220) {
  const xs = rows.map((r) => r.start / 1000);
  const plot = new uPlot(
    {
      width: Math.max(300, el.clientWidth || 600),
      height,
      legend: { show: true },
      scales: { x: { time: true, range: () => [fromMs / 1000, toMs / 1000] } },
      axes: [{}, { label: `${NAMES[channel]} (${UNITS[channel]})`, size: 60 }],
      series: [
        {},
        { label: "max", stroke: "rgba(192,57,43,0.6)", width: 1, points: { show: false } },
        { label: "mean", stroke: "#1f6feb", width: 2, points: { show: false } },
        { label: "min", stroke: "rgba(10,125,107,0.6)", width: 1, points: { show: false } },
      ],
    },
    [xs, rows.map((r) => r.max), rows.map((r) => r.mean), rows.map((r) => r.min)],
    el,
  );
  return { destroy: () => plot.destroy() };
}
