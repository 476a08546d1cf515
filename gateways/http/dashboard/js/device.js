// The device page: current values, a 24-hour chart per channel with the rule thresholds and events,
// occupancy (when the twin learns it), calibration, rules and subscriptions (add/delete), recent alerts
// live, and history from the archive (a week, a month). Time is the device's event time: a chart ends
// at its latest reading, which may run ahead of the wall clock (simulated fleets).
import { api, ApiError, command, follow } from "./api.js";
import { channelChart, historyChart } from "./chart.js";
import { alertItem } from "./fleet.js";
import { CHANNELS, NAMES, UNITS, duration, h, num, time, toast } from "./format.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export function mountDevice(main, deviceId, ctx) {
  const path = `/v1/devices/${encodeURIComponent(deviceId)}`;
  const header = h("div.device-head");
  const current = h("section.cards", { id: "current" });
  const side = h("div.side");
  const charts = h("section.panel", { id: "charts" }, h("h2", {}, "Last 24 hours"), h("p.muted", { id: "chart-source" }, "loading…"));
  const rulesPanel = h("section.panel", { id: "rules" });
  const subsPanel = h("section.panel", { id: "subscriptions" });
  const alertsList = h("ol.alerts", { id: "device-alerts" });
  const history = h("section.panel", { id: "history" });
  const liveState = h("span.badge", { id: "live-state" }, "connecting");
  main.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← fleet")),
    header,
    current,
    side,
    charts,
    h("div.columns", {}, rulesPanel, h("section.panel", { id: "device-alerts-panel" }, h("h2", {}, "Alerts ", liveState), alertsList)),
    subsPanel,
    history,
  );

  let view = null;
  const plots = new Map();
  let stopped = false;
  let archive = "unknown"; // "yes" | "no" | "unknown"

  const fail = (what) => (err) => {
    if (err instanceof ApiError && err.status === 401) return ctx.onDenied();
    toast(`${what}: ${err instanceof ApiError ? err.describe() : err.message}`, "error");
  };

  // ---- the twin
  async function loadView() {
    view = await api(path);
    renderHeader();
    renderCurrent();
    renderSide();
    renderRules();
    renderSubscriptions();
    return view;
  }

  const endOf = () => Math.max(view?.lastT ?? 0, 0) || Date.now();

  function renderHeader() {
    header.replaceChildren(
      h("h1", {}, deviceId, " ", h(`span.badge.${view.online ? "ok" : "warn"}`, { id: "online" }, view.online ? "online" : "offline")),
      h(
        "p.muted",
        {},
        `${num(view.readings, 0)} readings · ${num(view.duplicates, 0)} duplicates · ${num(view.late, 0)} late · last reading ${time(view.lastT)}`,
        view.lastSeen ? ` (arrived ${time(view.lastSeen)})` : "",
      ),
    );
  }

  function renderCurrent() {
    const present = CHANNELS.filter((ch) => view.channels[ch] !== undefined);
    current.replaceChildren(
      ...(present.length === 0
        ? [h("p.muted", {}, "No readings yet.")]
        : present.map((ch) => {
            const c = view.channels[ch];
            return h(
              "div.card",
              { dataset: { channel: ch } },
              h("div.card-title", {}, NAMES[ch]),
              h("div.card-value", {}, h("span.value", {}, num(c.last)), h("span.unit", {}, ` ${UNITS[ch]}`)),
              h("div.card-note", {}, `mean ${num(c.mean)} · min ${num(c.min)} · max ${num(c.max)} · ewma ${num(c.ewma)} · n ${num(c.count, 0)}`),
            );
          })),
    );
  }

  function renderSide() {
    const parts = [];
    const occ = view.occupancy;
    if (occ && typeof occ === "object") {
      parts.push(
        h(
          "div.card",
          { id: "occupancy" },
          h("div.card-title", {}, "Occupancy"),
          h("div.card-value", {}, occ.occupied ? "occupied" : "empty"),
          h("div.card-note", {}, `p = ${num(occ.probability, 2)}${occ.since ? ` · since ${time(occ.since)}` : ""}`),
        ),
      );
    }
    for (const ch of ["co2", "voc"]) {
      const cal = view.calibration?.[ch];
      if (cal === undefined) continue;
      parts.push(
        h(
          "div.card",
          { id: `calibration-${ch}` },
          h("div.card-title", {}, `${NAMES[ch]} calibration`),
          h("div.card-value", {}, `offset ${num(cal.offset)} ${UNITS[ch]}`),
          h(
            "div.card-note",
            {},
            `baseline ${cal.baseline === undefined ? "not yet (needs a closed day)" : `${num(cal.baseline)} ${UNITS[ch]}`} `,
            h("button.small", { onclick: () => recalibrate(ch) }, "recalibrate"),
          ),
        ),
      );
    }
    side.replaceChildren(h("section.cards", {}, ...parts));
  }

  async function recalibrate(ch) {
    if (!confirm(`Forget the ${NAMES[ch]} baseline of ${deviceId} and start over?`)) return;
    await command(deviceId, { type: "recalibrate", channel: ch })
      .then(() => toast(`${NAMES[ch]} recalibrated`))
      .then(loadView)
      .catch(fail("recalibrate"));
  }

  // ---- rules (the forms are built once: a refresh redraws the tables, never what the user is typing)
  const ruleRows = h("tbody", { id: "rule-rows" });
  rulesPanel.append(
    h("h2", {}, "Rules"),
    h("table", {}, h("thead", {}, h("tr", {}, ["rule", "channel", "", "enter / exit", "durations", "state", ""].map((t) => h("th", {}, t)))), ruleRows),
    h("h3", {}, "Add or replace a rule"),
    ruleForm(),
  );

  function ruleForm() {
    const fields = {
      id: h("input", { name: "id", required: true, pattern: "[A-Za-z0-9_-]{1,64}", placeholder: "my-co2", size: 12 }),
      channel: h("select", { name: "channel" }, ...CHANNELS.map((c) => h("option", { value: c }, NAMES[c]))),
      direction: h("select", { name: "direction" }, h("option", { value: "above" }, "above"), h("option", { value: "below" }, "below")),
      enter: h("input", { name: "enter", type: "number", step: "any", required: true, size: 6 }),
      exit: h("input", { name: "exit", type: "number", step: "any", required: true, size: 6 }),
      minMinutes: h("input", { name: "minMinutes", type: "number", min: 0, step: "any", value: 0, size: 4 }),
      clearMinutes: h("input", { name: "clearMinutes", type: "number", min: 0, step: "any", value: 0, size: 4 }),
    };
    return h(
      "form.inline",
      {
        id: "rule-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const rule = {
            id: fields.id.value.trim(),
            channel: fields.channel.value,
            direction: fields.direction.value,
            enter: Number(fields.enter.value),
            exit: Number(fields.exit.value),
            minDurationMs: Math.round(Number(fields.minMinutes.value || 0) * 60_000),
            clearDurationMs: Math.round(Number(fields.clearMinutes.value || 0) * 60_000),
          };
          await command(deviceId, { type: "putRule", rule })
            .then(() => {
              toast(`Rule ${rule.id} saved`);
              e.target.reset();
            })
            .then(refreshAll)
            .catch(fail("rule"));
        },
      },
      h("label", {}, "id ", fields.id),
      h("label", {}, fields.channel),
      h("label", {}, fields.direction),
      h("label", {}, "enter ", fields.enter),
      h("label", {}, "exit ", fields.exit),
      h("label", {}, "for ", fields.minMinutes, " min"),
      h("label", {}, "clear after ", fields.clearMinutes, " min"),
      h("button", { type: "submit" }, "Save rule"),
    );
  }

  function renderRules() {
    ruleRows.replaceChildren(
      ...view.rules.map((r) => {
        const ev = view.events?.[r.id];
        return h(
          "tr",
          { dataset: { rule: r.id } },
          h("td", {}, r.id),
          h("td", {}, NAMES[r.channel] ?? r.channel),
          h("td", {}, r.direction),
          h("td.num", {}, `${num(r.enter)} / ${num(r.exit)}`),
          h("td", {}, `${duration(r.minDurationMs)} / ${duration(r.clearDurationMs)}`),
          h("td", {}, ev ? h(`span.badge.${ev.state === "normal" ? "ok" : "warn"}`, {}, ev.state) : ""),
          h("td", {}, h("button.small", { onclick: () => deleteRule(r.id), dataset: { deleteRule: r.id } }, "delete")),
        );
      }),
    );
  }

  async function deleteRule(ruleId) {
    await command(deviceId, { type: "deleteRule", ruleId })
      .then(() => toast(`Rule ${ruleId} deleted`))
      .then(refreshAll)
      .catch(fail("delete rule"));
  }

  // ---- subscriptions
  const subsTable = h("div", { id: "subscription-table" });
  subsPanel.append(h("h2", {}, "Subscriptions"), subsTable, h("h3", {}, "Add a subscription"), subscriptionForm());

  function subscriptionForm() {
    const id = h("input", { name: "id", required: true, pattern: "[A-Za-z0-9_-]{1,64}", placeholder: "ops-hook", size: 12 });
    const provider = h("select", { name: "provider" }, ...["webhook", "email", "push", "thermostat"].map((p) => h("option", { value: p }, p)));
    const target = h("input", { name: "target", required: true, placeholder: "https://example.com/hook", size: 28 });
    const kinds = h("input", { name: "kinds", placeholder: "event.start,event.end (empty: all)", size: 26 });
    const secret = h("input", { name: "secret", placeholder: "whsec_… (optional)", size: 16 });
    return h(
      "form.inline",
      {
        id: "subscription-form",
        onsubmit: async (e) => {
          e.preventDefault();
          const list = kinds.value.split(",").map((k) => k.trim()).filter(Boolean);
          const subscription = { id: id.value.trim(), provider: provider.value, match: list.length > 0 ? { kinds: list } : {}, target: target.value.trim() };
          if (secret.value.trim() !== "") subscription.secret = secret.value.trim();
          await command(deviceId, { type: "subscribe", subscription })
            .then(() => {
              toast(`Subscription ${subscription.id} saved`);
              e.target.reset();
            })
            .then(loadView)
            .catch(fail("subscribe"));
        },
      },
      h("label", {}, "id ", id),
      h("label", {}, provider),
      h("label", {}, "target ", target),
      h("label", {}, "kinds ", kinds),
      h("label", {}, secret),
      h("button", { type: "submit" }, "Subscribe"),
    );
  }

  function renderSubscriptions() {
    subsTable.replaceChildren(
      view.subscriptions.length === 0
        ? h("p.muted", {}, "None: alerts of this device go nowhere but this page.")
        : h(
            "table",
            {},
            h("thead", {}, h("tr", {}, ["id", "provider", "target", "match", "signed", ""].map((t) => h("th", {}, t)))),
            h(
              "tbody",
              { id: "subscription-rows" },
              ...view.subscriptions.map((s) =>
                h(
                  "tr",
                  { dataset: { subscription: s.id } },
                  h("td", {}, s.id),
                  h("td", {}, s.provider),
                  h("td.wrap", {}, s.target),
                  h("td", {}, Object.entries(s.match ?? {}).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ") || "everything"),
                  h("td", {}, s.secret ? "yes" : ""),
                  h("td", {}, h("button.small", { onclick: () => unsubscribe(s.id), dataset: { unsubscribe: s.id } }, "delete")),
                ),
              ),
            ),
          ),
    );
  }

  async function unsubscribe(subscriptionId) {
    await command(deviceId, { type: "unsubscribe", subscriptionId })
      .then(() => toast(`Subscription ${subscriptionId} deleted`))
      .then(loadView)
      .catch(fail("unsubscribe"));
  }

  // ---- 24-hour charts
  async function readingsWindow(fromMs, toMs) {
    const out = [];
    let cursor;
    for (let page = 0; page < 10; page++) {
      const q = new URLSearchParams({ from: String(fromMs), to: String(toMs), limit: "1000", ...(cursor ? { cursor } : {}) });
      const r = await api(`${path}/readings?${q}`);
      out.push(...(r.readings ?? []));
      if (!r.next) break;
      cursor = r.next;
    }
    return out;
  }

  async function drawCharts() {
    const end = endOf();
    const from = end - DAY_MS;
    let source;
    const series = new Map();
    try {
      const readings = await readingsWindow(from, end + 1);
      archive = "yes";
      for (const r of readings) for (const ch of CHANNELS) if (typeof r[ch] === "number") (series.get(ch) ?? series.set(ch, []).get(ch)).push([r.t, r[ch]]);
      source = "Every reading, from the archive; new readings arrive live.";
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 503)) throw err;
      archive = err.code === "AIRTWIN_ERR_HTTP_NOT_FOUND" ? "no" : "unknown";
      for (const ch of CHANNELS) {
        const c = view.channels[ch];
        if (c === undefined) continue;
        series.set(ch, c.hourly.filter((b) => b.start >= from - HOUR_MS).map((b) => [b.start + HOUR_MS / 2, b.mean]));
      }
      source =
        archive === "no"
          ? "Hourly means from the twin: the archive is not running behind this gateway, so single readings of the past are not available. New readings arrive live."
          : `Hourly means from the twin: the archive did not answer (${err.message}). New readings arrive live.`;
    }
    const events = await eventSpans(end);
    for (const p of plots.values()) p.destroy();
    plots.clear();
    const blocks = [];
    for (const ch of CHANNELS) {
      if (!series.has(ch) && view.channels[ch] === undefined) continue;
      const box = h("div.chart", { dataset: { channel: ch } });
      blocks.push(h("div.chart-block", {}, h("h3", {}, NAMES[ch]), box));
      plots.set(ch, { box, ch, points: series.get(ch) ?? [] });
    }
    charts.replaceChildren(h("h2", {}, "Last 24 hours"), h("p.muted", { id: "chart-source" }, source), ...blocks);
    for (const [ch, p] of plots) {
      const rules = view.rules.filter((r) => r.channel === ch);
      plots.set(ch, channelChart(p.box, ch, { points: p.points, rules, events: events.filter((e) => e.channel === ch), windowMs: DAY_MS, endMs: end }));
    }
  }

  /** Event spans of the window: ended events from the alerts, and the ones active now from the twin. */
  async function eventSpans(end) {
    const from = Math.min(end - DAY_MS, Date.now() - DAY_MS);
    const spans = [];
    try {
      const r = await api(`${path}/events?from=${from}&limit=1000`);
      for (const e of r.recent ?? []) if (e.startedAt !== undefined) spans.push({ channel: e.channel, from: e.startedAt, to: e.endedAt ?? end });
    } catch (err) {
      fail("events")(err);
    }
    for (const r of view.rules) {
      const ev = view.events?.[r.id];
      if (ev && (ev.state === "active" || ev.state === "clearing") && ev.startedAt !== undefined && !spans.some((s) => s.from === ev.startedAt && s.channel === r.channel)) {
        spans.push({ channel: r.channel, from: ev.startedAt, to: end });
      }
    }
    return spans;
  }

  async function refreshAll() {
    await loadView();
    const end = endOf();
    const events = await eventSpans(end);
    for (const [ch, p] of plots) p.update?.({ rules: view.rules.filter((r) => r.channel === ch), events: events.filter((e) => e.channel === ch) });
  }

  // ---- alerts
  async function loadAlerts() {
    const from = Math.min(endOf() - DAY_MS, Date.now() - DAY_MS);
    const r = await api(`${path}/alerts?from=${from}&limit=200`);
    const list = r.alerts ?? [];
    alertsList.replaceChildren(...list.slice(-100).reverse().map(alertItem));
    for (const a of list) seen.add(a.id);
  }
  const seen = new Set();

  // ---- history
  function renderHistory() {
    const out = h("div", { id: "history-out" });
    const channel = h("select", { id: "history-channel" }, ...CHANNELS.filter((c) => view.channels[c]).map((c) => h("option", { value: c }, NAMES[c])));
    let chart;
    let last = "week";
    const show = async (period) => {
      last = period;
      const end = endOf();
      const resolution = period === "week" ? "hour" : "day";
      const from = end - (period === "week" ? 7 : 30) * DAY_MS;
      out.replaceChildren(h("p.muted", {}, "loading…"));
      try {
        const r = await api(`${path}/aggregates?resolution=${resolution}&from=${from}&to=${end + HOUR_MS}`);
        const rows = (r.channels?.[channel.value] ?? []).slice().sort((a, b) => a.start - b.start);
        chart?.destroy();
        const box = h("div.chart");
        const notes = [];
        if (r.coverage !== undefined) notes.push(h("p.warn", { id: "history-coverage" }, `Not covered: ${describeCoverage(r.coverage)}`));
        if (archive === "no") {
          notes.push(
            h(
              "p.warn",
              { id: "history-no-archive" },
              `The archive is not running behind this gateway: this shows only what the twin holds (24 hourly and 7 daily buckets). Run \`airtwin archive\` for ${period === "week" ? "a week of hours" : "a month of days"}.`,
            ),
          );
        }
        const first = rows[0]?.start;
        out.replaceChildren(
          ...notes,
          h("p.muted", {}, rows.length === 0 ? "No buckets in this range." : `${rows.length} ${resolution === "hour" ? "hours" : "days"} from ${time(first)}`),
          box,
        );
        if (rows.length > 0) chart = historyChart(box, channel.value, rows, from, end + HOUR_MS);
      } catch (err) {
        out.replaceChildren(h("p.error", {}, `History unavailable: ${err instanceof ApiError ? err.describe() : err.message}`));
      }
    };
    channel.addEventListener("change", () => show(last));
    history.replaceChildren(
      h("h2", {}, "History"),
      h("div.row", {}, channel, h("button", { id: "history-week", onclick: () => show("week") }, "Week"), h("button", { id: "history-month", onclick: () => show("month") }, "Month")),
      out,
    );
    return () => chart?.destroy();
  }

  // ---- live
  let refreshTimer;
  const stopLive = follow(
    `${path}/live`,
    ({ event, data }) => {
      if (event === "readings") {
        for (const r of data.readings ?? []) {
          for (const ch of CHANNELS) if (typeof r[ch] === "number") plots.get(ch)?.add?.(r.t, r[ch]);
        }
        updateLast(data.readings ?? []);
      } else if (event === "alert" && !seen.has(data.id)) {
        seen.add(data.id);
        alertsList.prepend(alertItem(data));
        // the rule states and event spans changed: fetch them once things settle
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => void refreshAll().catch(fail("refresh")), 500);
      }
    },
    (state) => {
      liveState.textContent = state === "open" ? "live" : state;
      liveState.className = `badge ${state === "open" ? "ok" : "warn"}`;
      if (state === "denied") ctx.onDenied();
    },
  );

  function updateLast(readings) {
    const latest = readings[readings.length - 1];
    if (latest === undefined || view === null) return;
    for (const ch of CHANNELS) {
      if (typeof latest[ch] !== "number") continue;
      const el = current.querySelector(`[data-channel="${ch}"] .value`);
      if (el) el.textContent = num(latest[ch]);
    }
  }

  let destroyHistory = () => undefined;
  loadView()
    .then(async () => {
      if (stopped) return;
      destroyHistory = renderHistory();
      await Promise.all([drawCharts().catch(fail("charts")), loadAlerts().catch(fail("alerts"))]);
    })
    .catch((err) => {
      if (err instanceof ApiError && err.status === 401) return ctx.onDenied();
      main.replaceChildren(h("p", {}, h("a", { href: "#/" }, "← fleet")), h("p.error", { id: "device-error" }, `${deviceId}: ${err instanceof ApiError ? err.describe() : err.message}`));
    });

  return () => {
    stopped = true;
    clearTimeout(refreshTimer);
    stopLive();
    destroyHistory();
    for (const p of plots.values()) p.destroy?.();
  };
}

/** The archive's `coverage` note in words (its shape is the archive's: ranges or a message). */
function describeCoverage(c) {
  if (typeof c === "string") return c;
  const ranges = Array.isArray(c) ? c : Array.isArray(c?.missing) ? c.missing : Array.isArray(c?.uncovered) ? c.uncovered : undefined;
  if (ranges) return ranges.map((r) => `${time(r.from)} – ${time(r.to)}`).join(", ") || "nothing";
  return JSON.stringify(c);
}
