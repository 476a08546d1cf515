// What an e-mail from airtwin says: alerts and the daily/weekly reports as a subject, a plain-text body
// and an HTML body (inline styles only: mail clients drop style sheets). Written for the person who
// reads it: how the air was in words first, then the figures, the worst hour, the events with their
// times, occupied hours and the comparison with the period before. Times are UTC (the twin knows no
// time zone); every value from data is escaped in the HTML.
import type { Alert, Channel, Report, ReportChannel } from "../../../actors/device-twin/domain/mod.ts";

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

const NAMES: Record<Channel, { name: string; unit: string; digits: number }> = {
  pm: { name: "PM2.5", unit: "µg/m³", digits: 1 },
  co2: { name: "CO₂", unit: "ppm", digits: 0 },
  voc: { name: "VOC", unit: "ppb", digits: 0 },
  tmp: { name: "Temperature", unit: "°C", digits: 1 },
  hum: { name: "Humidity", unit: "%", digits: 0 },
  allpollu: { name: "Pollution index", unit: "%", digits: 0 },
};
const ORDER: readonly Channel[] = ["pm", "co2", "voc", "allpollu", "tmp", "hum"];

const fmt = (ch: Channel, v: number): string => `${v.toFixed(NAMES[ch].digits)} ${NAMES[ch].unit}`;
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const hhmm = (t: number): string => new Date(t).toISOString().slice(11, 16);
const DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const dayName = (t: number): string => {
  const d = new Date(t);
  return `${DAY_NAMES[d.getUTCDay()]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()}`;
};
const when = (t: number, periodStart: number): string => (Math.floor(t / 86_400_000) === Math.floor(periodStart / 86_400_000) ? hhmm(t) : `${dayName(t)} ${hhmm(t)}`);

function duration(ms: number): string {
  const min = Math.round(ms / 60_000);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h${min % 60 === 0 ? "" : ` ${min % 60} min`}`;
}

/** A one-word verdict and a sentence on the air of a period, from PM2.5 and CO₂ (WHO 2021 / US EPA AQI, ventilation practice). */
export function verdict(channels: Report["channels"]): { word: "good" | "fair" | "poor"; sentence: string } {
  const pm = channels.pm?.mean;
  const co2 = channels.co2?.mean;
  const worst = Math.max(pm === undefined ? 0 : pm >= 35.5 ? 2 : pm > 15 ? 1 : 0, co2 === undefined ? 0 : co2 >= 1400 ? 2 : co2 > 1000 ? 1 : 0);
  const word = (["good", "fair", "poor"] as const)[worst] as "good" | "fair" | "poor";
  const parts: string[] = [];
  if (pm !== undefined) parts.push(`fine particles averaged ${fmt("pm", pm)}${pm > 15 ? " (above the WHO daily guideline of 15)" : ""}`);
  if (co2 !== undefined) parts.push(`CO₂ averaged ${fmt("co2", co2)}${co2 > 1000 ? " (the room could use more fresh air)" : ""}`);
  const sentence = `The air was ${word}${parts.length > 0 ? `: ${parts.join(", and ")}` : ""}.`;
  return { word, sentence };
}

/** "▲ 12 %", "▼ 3 %", "same" (temperature and humidity: the difference in their units, "▲ 1.0 °C"), or "—" without a previous value. */
function change(ch: Channel, now: number, before: number | undefined): string {
  if (before === undefined) return "—";
  if (ch === "tmp" || ch === "hum") {
    const diff = Number((now - before).toFixed(NAMES[ch].digits));
    return diff === 0 ? "same" : `${diff > 0 ? "▲" : "▼"} ${fmt(ch, Math.abs(diff))}`;
  }
  if (before === 0) return "—";
  const pct = Math.round(((now - before) / Math.abs(before)) * 100);
  return pct === 0 ? "same" : `${pct > 0 ? "▲" : "▼"} ${Math.abs(pct)} %`;
}

interface Section {
  heading: string;
  lines: string[];
  /** Rows of a table (first row: header). */
  table?: string[][];
}

function reportSections(r: Report): Section[] {
  const daily = r.kind === "report.day";
  const against = daily ? "the day before" : "the week before";
  const sections: Section[] = [];
  const rows: string[][] = [["", "average", "lowest", "highest", `vs ${against}`]];
  for (const ch of ORDER) {
    const c: ReportChannel | undefined = r.channels[ch];
    if (c === undefined) continue;
    rows.push([NAMES[ch].name, fmt(ch, c.mean), fmt(ch, c.min), fmt(ch, c.max), change(ch, c.mean, r.previous?.means[ch])]);
  }
  sections.push({ heading: "The figures", lines: [], table: rows });

  const worst: string[] = [];
  if (r.worstHour !== undefined) {
    const w = r.worstHour;
    worst.push(`Worst hour: ${daily ? "" : `${dayName(w.start)}, `}${hhmm(w.start)}–${hhmm(w.start + 3_600_000)} UTC, ${NAMES[w.channel].name} averaged ${fmt(w.channel, w.mean)}.`);
  }
  if (r.worstDay !== undefined) worst.push(`Worst day: ${dayName(r.worstDay.start)}, ${NAMES[r.worstDay.channel].name} averaged ${fmt(r.worstDay.channel, r.worstDay.mean)}.`);
  if (worst.length > 0) sections.push({ heading: daily ? "The worst hour" : "The worst of the week", lines: worst });

  const events: string[] = [];
  for (const e of r.events) {
    const name = NAMES[e.channel].name;
    if (e.endedAt !== undefined) {
      events.push(`${name} (${e.ruleId}): ${when(e.startedAt, r.start)}–${when(e.endedAt, r.start)} UTC, ${duration(e.endedAt - e.startedAt)}${e.peak === undefined ? "" : `, peak ${fmt(e.channel, e.peak)}`}.`);
    } else {
      events.push(`${name} (${e.ruleId}): from ${when(e.startedAt, r.start)} UTC, still going at the end of the day.`);
    }
  }
  if (r.eventsOmitted > 0) events.push(`…and ${r.eventsOmitted} more.`);
  const ruleIds = Object.keys(r.rules);
  if (!daily) {
    for (const id of ruleIds) {
      const rule = r.rules[id]!;
      events.push(`${NAMES[rule.channel].name} (${id}): ${rule.events} event${rule.events === 1 ? "" : "s"}, ${duration(rule.minutes * 60_000)} in all.`);
    }
  } else if (ruleIds.length > 0) {
    const total = ruleIds.reduce((s, id) => s + r.rules[id]!.minutes, 0);
    events.push(`In all, ${duration(total * 60_000)} in a pollution event.`);
  }
  sections.push({ heading: "Pollution events", lines: events.length > 0 ? events : [daily ? "None today." : "None this week."] });

  const occupied = r.occupiedHours;
  sections.push({
    heading: "Presence",
    lines: [occupied > 0 ? `The room was occupied for about ${occupied.toFixed(1)} hours${daily ? "" : ` over ${r.days ?? 7} days with readings`}.` : "Nobody seemed to be in the room."],
  });
  return sections;
}

function reportTitle(r: Report): string {
  if (r.kind === "report.day") return dayName(r.start);
  return `the week of ${dayName(r.start)}`;
}

/** The e-mail of a daily or weekly report. */
export function renderReportEmail(r: Report): RenderedEmail {
  const v = verdict(r.channels);
  const title = reportTitle(r);
  const subject = `Your air on ${title} was ${v.word} — ${r.deviceId}`;
  const intro = `${r.kind === "report.day" ? "Daily" : "Weekly"} report for ${r.deviceId}, ${title} (UTC).`;
  return { subject, ...layout(subject, intro, v.sentence, reportSections(r)) };
}

/** A push notification's title (the e-mail's subject) and body (its first sentence, at most 178 characters). */
export function renderPush(item: { alert?: Alert; report?: Report }): { title: string; body: string } {
  const lead = item.alert !== undefined ? alertLead(item.alert) : { subject: renderReportEmail(item.report as Report).subject, sentence: verdict((item.report as Report).channels).sentence };
  const body = lead.sentence.length <= 178 ? lead.sentence : `${lead.sentence.slice(0, 177)}…`;
  return { title: lead.subject, body };
}

/** The e-mail of an alert. */
export function renderAlertEmail(a: Alert): RenderedEmail {
  const { subject, sentence, lines } = alertLead(a);
  return { subject, ...layout(subject, `Alert for ${a.deviceId}.`, sentence, [{ heading: "Details", lines }]) };
}

function alertLead(a: Alert): { subject: string; sentence: string; lines: string[] } {
  const ch = a.channel === "device" ? undefined : a.channel;
  const name = ch === undefined ? "" : NAMES[ch].name;
  const at = `${dayName(a.at)} ${hhmm(a.at)} UTC`;
  let subject: string;
  let sentence: string;
  const lines: string[] = [];
  switch (a.kind) {
    case "event.start":
      subject = `${name} is high in ${a.deviceId}`;
      sentence = `${name} reached ${ch && a.value !== undefined ? fmt(ch, a.value) : "its threshold"}${ch && a.threshold !== undefined ? `, at or over the ${fmt(ch, a.threshold)} of rule ${a.ruleId}` : ""}, since ${when(a.startedAt ?? a.at, a.at)} UTC. Airing the room helps.`;
      break;
    case "event.end":
      subject = `${name} is back to normal in ${a.deviceId}`;
      sentence = `The ${name} event of rule ${a.ruleId} ended at ${when(a.endedAt ?? a.at, a.at)} UTC after ${duration(a.durationMs ?? 0)}.`;
      if (ch && a.peak !== undefined) lines.push(`Peak: ${fmt(ch, a.peak)}${a.mean === undefined ? "" : `, average ${fmt(ch, a.mean)}`}.`);
      break;
    case "forecast":
      subject = `${name} is expected to rise in ${a.deviceId}`;
      sentence = `${name} is forecast to pass ${ch && a.value !== undefined ? fmt(ch, a.value) : "its threshold"} around ${a.expectedAt === undefined ? "soon" : `${hhmm(a.expectedAt)} UTC`} (rule ${a.ruleId}). Opening a window now keeps it from happening.`;
      break;
    case "anomaly":
      subject = `Unusual ${name} reading in ${a.deviceId}`;
      sentence = `${name} read ${ch && a.value !== undefined ? fmt(ch, a.value) : "an unusual value"}${ch && a.expected !== undefined ? ` where about ${fmt(ch, a.expected)} was expected` : ""} (${a.reason ?? "anomaly"}). If it persists, check the sensor.`;
      break;
    case "offline":
      subject = `${a.deviceId} is offline`;
      sentence = `${a.deviceId} has sent no readings since ${at}. Check its power and Wi-Fi.`;
      break;
    default:
      subject = `${a.deviceId} is back online`;
      sentence = `${a.deviceId} is sending readings again (${at}).`;
  }
  lines.push(`Time: ${at}.`);
  return { subject, sentence, lines };
}

function layout(subject: string, intro: string, lead: string, sections: Section[]): { text: string; html: string } {
  const text: string[] = [intro, "", lead, ""];
  for (const s of sections) {
    text.push(s.heading, "-".repeat(s.heading.length));
    if (s.table !== undefined) {
      const widths = s.table[0]!.map((_, i) => Math.max(...s.table!.map((row) => (row[i] ?? "").length)));
      for (const row of s.table) text.push(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
    }
    for (const l of s.lines) text.push(l);
    text.push("");
  }
  text.push("— airtwin. You get this because of a subscription on this device; remove it to stop these e-mails.");

  const td = "padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;";
  const html = [
    `<!doctype html><html><head><meta charset="utf-8"><title>${esc(subject)}</title></head>`,
    `<body style="margin:0;padding:24px;background:#f3f4f6;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#111827;">`,
    `<div style="max-width:640px;margin:0 auto;background:#ffffff;border-radius:8px;padding:24px 28px;">`,
    `<p style="margin:0 0 4px;color:#6b7280;font-size:13px;">${esc(intro)}</p>`,
    `<h1 style="margin:0 0 16px;font-size:20px;">${esc(subject)}</h1>`,
    `<p style="margin:0 0 20px;font-size:15px;line-height:1.5;">${esc(lead)}</p>`,
    ...sections.map((s) =>
      [
        `<h2 style="margin:20px 0 8px;font-size:15px;color:#374151;">${esc(s.heading)}</h2>`,
        s.table === undefined
          ? ""
          : `<table style="border-collapse:collapse;width:100%;font-size:14px;">${s.table
              .map((row, i) => `<tr>${row.map((c) => (i === 0 ? `<th style="${td}color:#6b7280;font-weight:600;">${esc(c)}</th>` : `<td style="${td}">${esc(c)}</td>`)).join("")}</tr>`)
              .join("")}</table>`,
        s.lines.length === 0 ? "" : `<ul style="margin:0;padding-left:20px;font-size:14px;line-height:1.6;">${s.lines.map((l) => `<li>${esc(l)}</li>`).join("")}</ul>`,
      ].join(""),
    ),
    `<p style="margin:24px 0 0;color:#9ca3af;font-size:12px;">airtwin. You get this because of a subscription on this device; remove it to stop these e-mails.</p>`,
    `</div></body></html>`,
  ].join("\n");
  return { text: text.join("\n"), html };
}
