// One row of the soak's time series: per process heap (from its /metrics: prom-client's default
// metrics, where the process has them), RSS and CPU (from /proc, the same for every process), the
// nodes' input lag and the archive's, and the latency of probe requests made since the previous row.
import { readFileSync } from "node:fs";

/** Values of every series of a metric in a Prometheus text exposition. */
export function metricValues(text: string, name: string): number[] {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const v = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(v)) out.push(v);
  }
  return out;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Heap used by the process (MB), when its /metrics has prom-client's default metrics. */
export function heapMb(text: string): number {
  const v = metricValues(text, "nodejs_heap_size_used_bytes");
  return v.length === 0 ? Number.NaN : sum(v) / 2 ** 20;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** RSS (MB) and CPU seconds used so far of a process, from /proc (Linux); undefined when it is gone. */
export function procFigures(pid: number): { rssMb: number; cpuSeconds: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the fields after the command name (which may hold spaces) — utime and stime are the 14th and 15th
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    return { rssMb: rssKb / 1024, cpuSeconds };
  } catch {
    return undefined;
  }
}

/** Input messages the nodes have not yet consumed (all shards). */
export const nodeLag = (text: string): number => sum(metricValues(text, "airtwin_consumer_lag"));
/** Messages the archive has not yet archived (all sources). */
export const archiveLag = (text: string): number => sum(metricValues(text, "airtwin_archive_lag_messages"));
