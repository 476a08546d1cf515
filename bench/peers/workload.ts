// The workload every peer gets, and how a round is measured. Seeded: request i is device i mod N's
// next upload of `perRequest` readings (all six channels, Foobot resolution, 5 minutes apart), the
// same bytes for every system. A closed-loop driver keeps `concurrency` requests in flight and times
// each one; a round reports readings/s, latency percentiles, the CPU seconds of every process involved
// per million readings and their peak RSS, as one JSON line that bench/peers.ts collects.
import { readFileSync } from "node:fs";
import type { Reading } from "../../actors/device-twin/domain/types.ts";
import { flag, int, parseArgs, type Args } from "../lib/args.ts";
import { deviceId, reading, READING_INTERVAL_MS, rng, T0 } from "../lib/fleet.ts";
import { emit, percentile, round } from "../lib/report.ts";

export interface Workload {
  devices: number;
  /** Requests per device in a round. */
  perDevice: number;
  /** Readings per request (one device's upload). */
  perRequest: number;
  /** Requests in flight (closed loop). */
  concurrency: number;
  seed: number;
}

export interface PeerRequest {
  index: number;
  device: number;
  deviceId: string;
  readings: Reading[];
}

/** The workload from the command line (bench/peers.ts passes the same to every system). */
export function workloadFrom(argv: readonly string[]): { workload: Workload; args: Args } {
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  return {
    args,
    workload: {
      devices: int(args, "devices", quick ? 1000 : 10_000),
      perDevice: int(args, "per-device", 2),
      perRequest: int(args, "per-request", 10),
      concurrency: int(args, "concurrency", 64),
      seed: int(args, "seed", 16),
    },
  };
}

export const totalRequests = (w: Workload): number => w.devices * w.perDevice;
export const totalReadings = (w: Workload): number => totalRequests(w) * w.perRequest;

/** Request `index` of the workload (deterministic: its own seeded generator). */
export function request(w: Workload, index: number): PeerRequest {
  const device = index % w.devices;
  const upload = Math.floor(index / w.devices);
  const rand = rng(w.seed * 1_000_003 + index);
  const readings: Reading[] = [];
  for (let k = 0; k < w.perRequest; k++) readings.push(reading(rand, T0 + (upload * w.perRequest + k) * READING_INTERVAL_MS));
  return { index, device, deviceId: deviceId(device), readings };
}

/**
 * Sends every request of the workload, `concurrency` at a time, each device's uploads in order (device
 * i's next upload is only due after all N devices' previous one). `send` resolves when the system
 * answers; the latency of each request is from the call to that answer.
 */
export async function drive(w: Workload, send: (r: PeerRequest) => Promise<void>): Promise<{ seconds: number; latencyMs: Float64Array }> {
  const total = totalRequests(w);
  const latencyMs = new Float64Array(total);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const r = request(w, i);
      const s = performance.now();
      await send(r);
      latencyMs[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(w.concurrency, total) }, worker));
  return { seconds: (performance.now() - t0) / 1000, latencyMs };
}

/** CPU seconds (user + system) a process has used so far; NaN when /proc does not have it. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return fields === undefined ? Number.NaN : (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100 on Linux)
}

/** The fields of /proc/<pid>/stat after the command name (state first); undefined once the process is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process's children that have exited and been waited for (cutime + cstime): a
 * database server's backends that closed, whose own /proc entries are gone.
 */
export function reapedChildrenCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return fields === undefined ? Number.NaN : (Number(fields[13]) + Number(fields[14])) / 100;
}

/**
 * Peak resident set of a live process (VmHWM), MB; or, with `privateOnly`, its private resident memory
 * now (RssAnon: a database backend's peak counts the shared buffers every backend maps); NaN when /proc
 * does not have it.
 */
export function peakRssMb(pid: number, privateOnly = false): number {
  try {
    const m = (privateOnly ? /^RssAnon:\s+(\d+) kB/m : /^VmHWM:\s+(\d+) kB/m).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

export function loadAverage(): number | undefined {
  try {
    return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);
  } catch {
    return undefined;
  }
}

/**
 * CPU of named groups of processes over a round. A group's pids can be given late (a database's
 * backends exist once the pool has connected): `add` before `stop`, and their CPU counts from their
 * start, which is within the round.
 */
export class ProcessMeter {
  private readonly before = new Map<number, number>();
  private readonly groups = new Map<string, Set<number>>();
  private readonly privateOnly = new Set<string>();
  /** Per group, parents whose exited children count (pid → their reaped CPU when added). */
  private readonly reaped = new Map<string, Map<number, number>>();
  /** Processes killed on purpose: their CPU as read just before (pid → seconds). */
  private readonly retired = new Map<number, number>();

  constructor(groups: Record<string, readonly number[]>) {
    for (const [name, pids] of Object.entries(groups)) for (const pid of pids) this.add(name, pid, true);
  }

  /** `privateOnly`: the group's memory is its private resident memory (see peakRssMb). */
  add(group: string, pid: number, fromNow = false, privateOnly = false): void {
    if (privateOnly) this.privateOnly.add(group);
    let g = this.groups.get(group);
    if (g === undefined) this.groups.set(group, (g = new Set()));
    if (g.has(pid)) return;
    g.add(pid);
    this.before.set(pid, fromNow ? cpuSeconds(pid) : 0);
  }

  /**
   * Keeps `pid`'s CPU as it is now, for a process about to be killed (a crash test): it still counts when
   * the process is gone (but for the milliseconds before the kill); its memory, no longer held, does not.
   */
  retire(pid: number): void {
    this.retired.set(pid, cpuSeconds(pid));
  }

  /**
   * Counts in `group`, from now, the CPU of `parent`'s children that exit and are reaped: a pooled
   * database connection closed within the round (an idle pool's extra connections) is in `exited` and
   * counts nothing itself, but its whole life's CPU reaches its server's parent process when it ends.
   * That over-counts what such a backend spent before the round — small for the short-lived ones.
   */
  addReaped(group: string, parent: number): void {
    let g = this.reaped.get(group);
    if (g === undefined) this.reaped.set(group, (g = new Map()));
    g.set(parent, reapedChildrenCpuSeconds(parent));
  }

  /**
   * CPU seconds and peak RSS (MB, summed over the group's processes) per group, read now. A process that
   * has exited meanwhile (a database backend) counts nothing and is named in `exited`: one such process
   * made a group's figures NaN, and the bench printed null.
   */
  read(): { cpuS: Record<string, number>; peakRssMb: Record<string, number>; exited: string[] } {
    const cpuS: Record<string, number> = {};
    const rss: Record<string, number> = {};
    const exited: string[] = [];
    for (const [name, pids] of this.groups) {
      let c = 0;
      let m = 0;
      for (const pid of pids) {
        const retired = this.retired.get(pid);
        if (retired !== undefined) {
          c += retired - this.before.get(pid)!;
          continue;
        }
        const now = cpuSeconds(pid);
        const peak = peakRssMb(pid, this.privateOnly.has(name));
        if (Number.isNaN(now) || Number.isNaN(peak)) {
          exited.push(`${name} ${pid}`);
          continue;
        }
        c += now - this.before.get(pid)!;
        m += peak;
      }
      for (const [parent, before] of this.reaped.get(name) ?? []) {
        const now = reapedChildrenCpuSeconds(parent);
        if (!Number.isNaN(now)) c += now - before;
      }
      cpuS[name] = round(c);
      rss[name] = round(m);
    }
    return { cpuS, peakRssMb: rss, exited };
  }
}

/** What one system's round measured. */
export interface RoundResult {
  system: string;
  readings: number;
  seconds: number;
  /** Per-request latency samples (ms). */
  latencyMs: Float64Array;
  /** What the latency is from and to, for this system. */
  latencyIs: string;
  cpuS: Record<string, number>;
  peakRssMb: Record<string, number>;
  /** What a crash loses, in this system's own terms. */
  crashLoses: string;
  versions: Record<string, string>;
  extra?: Record<string, unknown>;
}

/** Prints a round as one JSON line (a Figure of suite "peers"). */
export function emitRound(w: Workload, r: RoundResult): void {
  const lat = Array.from(r.latencyMs);
  const cpuTotal = Object.values(r.cpuS).reduce((a, b) => a + b, 0);
  emit({
    suite: "peers",
    name: `round.${r.system}`,
    value: round(r.readings / r.seconds),
    unit: "readings/s",
    detail: {
      system: r.system,
      readings: r.readings,
      seconds: round(r.seconds),
      latencyIs: r.latencyIs,
      p50Ms: round(percentile(lat, 50)),
      p99Ms: round(percentile(lat, 99)),
      cpuS: r.cpuS,
      cpuSPerMillionReadings: round((cpuTotal * 1e6) / r.readings),
      peakRssMb: r.peakRssMb,
      peakRssMbTotal: round(Object.values(r.peakRssMb).reduce((a, b) => a + b, 0)),
      crashLoses: r.crashLoses,
      versions: r.versions,
      workload: w,
      load: loadAverage(),
      ...r.extra,
    },
  });
}

/** The bench process itself as a group of the meter (the client, and for the in-process peers the application). */
export const self = (): number => process.pid;
