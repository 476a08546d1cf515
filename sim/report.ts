// What a simulate run shows: a progress bar on a terminal (cli-progress: sent, accepted, rejected,
// readings/s, event time), a status line every 10 s otherwise (a log file), and the summary at the end.
import cliProgress from "cli-progress";
import type { SimStats } from "./runner.ts";

const fmt = (n: number) => n.toLocaleString("en-US");
const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString().slice(0, 16).replace("T", " ") : "—");

export interface ProgressOptions {
  stats: SimStats;
  /** A bar to fill: total and current value (wall ms of a fixed duration, or readings of a file). */
  bar?: { total: number; value: () => number };
  tty: boolean;
  write: (line: string) => void;
}

/** Starts reporting; returns a function that stops it. */
export function startProgress(o: ProgressOptions): () => void {
  let lastAccepted = 0;
  let lastAt = Date.now();
  let rate = 0;
  const sample = () => {
    const now = Date.now();
    if (now - lastAt >= 1000) {
      rate = ((o.stats.accepted - lastAccepted) * 1000) / (now - lastAt);
      lastAccepted = o.stats.accepted;
      lastAt = now;
    }
    return {
      sent: fmt(o.stats.sent),
      accepted: fmt(o.stats.accepted),
      rejected: fmt(o.stats.rejected),
      rate: fmt(Math.round(rate)),
      event: iso(o.stats.eventTime),
    };
  };
  if (o.tty) {
    const fields = "sent {sent} | accepted {accepted} | rejected {rejected} | {rate} readings/s | event time {event}";
    const bar = new cliProgress.SingleBar(
      { format: o.bar ? `{bar} {percentage}% | ${fields}` : fields, hideCursor: true, clearOnComplete: false, barsize: 24, fps: 5 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(o.bar?.total ?? 1, 0, sample());
    const timer = setInterval(() => bar.update(Math.min(o.bar?.total ?? 0, o.bar?.value() ?? 0), sample()), 250);
    return () => {
      clearInterval(timer);
      bar.update(Math.min(o.bar?.total ?? 0, o.bar?.value() ?? 0), sample());
      bar.stop();
    };
  }
  const timer = setInterval(() => {
    const s = sample();
    o.write(`sent ${s.sent}, accepted ${s.accepted}, rejected ${s.rejected}, ${s.rate} readings/s, event time ${s.event}`);
  }, 10_000);
  timer.unref();
  return () => clearInterval(timer);
}

/** The lines of the end-of-run summary. */
export function summaryLines(s: SimStats, transport: string): string[] {
  const seconds = s.elapsedMs / 1000;
  const codes = (m: Record<string, number>) => Object.entries(m).map(([code, n]) => `${code} ×${fmt(n)}`).join(", ");
  const lines = [
    `airtwin simulate (${transport}): ${fmt(s.sent)} readings sent in ${seconds.toFixed(1)} s (${fmt(Math.round(s.accepted / Math.max(seconds, 0.001)))} accepted/s) in ${fmt(s.requests)} requests`,
    `  accepted ${fmt(s.accepted)}, rejected ${fmt(s.rejected)}${s.rejected > 0 ? ` (${codes(s.rejectedByCode)})` : ""}, retried ${fmt(s.retried)}${s.retried > 0 ? ` (${codes(s.retriedByCode)})` : ""}`,
    `  resent on purpose ${fmt(s.resent)} (the twins count them as duplicates), backfilled (sent late) ${fmt(s.backfilled)}, not sent ${fmt(s.pending)}`,
  ];
  if (s.lastRejection !== undefined) lines.push(`  last rejection: ${s.lastRejection}`);
  return lines;
}
