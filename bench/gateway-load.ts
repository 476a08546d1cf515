// Open-loop load at a constant rate for bench/gateway.ts: request i is due at start + i/rate, whatever
// the answers before it did (wrk2-style), and its latency counts from that due time, so a server that
// falls behind is charged for the queue it causes (coordinated omission corrected by construction).
// Requests go over an undici Pool (HTTP/1.1 keep-alive, one request in flight per connection, as a
// device fleet's gateway-side load balancer would see them); the generator itself keeps at most
// `connections` in flight and queues the rest by due time, so a slow answer delays the next request
// only when every connection is busy — and that wait is charged to the latency.
// A script run as a child process (`node --import tsx bench/gateway-load.ts`), so its work does not
// share an event loop with the probes of the bench process; it reads its job as JSON on stdin and
// prints one JSON line with the result.
//
// Why not autocannon's `overallRate`: autocannon gives each connection a budget of rate/connections
// requests per second, which each connection spends back to back at the start of every second (the
// connections' one-second intervals start together), so "half rate" is the maximum rate in bursts for
// about half of each second followed by silence; and its coordinated-omission correction records
// every response with an expected interval of `Math.ceil(1 / rate)` — 1 (ms), the per-connection rate
// being requests per second — adding a synthetic sample for every millisecond of each response, which
// weights each latency by its own size. Both inflate the percentiles (of the bare route as much as of
// the gateway), so they measured the generator rather than the servers.
import { Pool } from "undici";

/** The job, on stdin. */
export interface LoadJob {
  /** `http://host:port` */
  url: string;
  /** Requests per second, spread evenly. */
  rate: number;
  durationS: number;
  /** Seconds at the same rate before the measured ones (JIT, connection buffers); not recorded. */
  warmupS: number;
  /** Keep-alive connections, one request in flight on each. */
  connections: number;
  devices: Array<{ id: string; token: string }>;
  /** Event time (ms) of each device's first reading; readings 1 s apart. */
  baseT: number;
  readingsPerRequest: number;
}

/** The result, one JSON line on stdout. */
export interface LoadResult {
  /** Requests sent, warm-up included. */
  sent: number;
  /** Answers by HTTP status (measured seconds). */
  status: Record<string, number>;
  errors: number;
  /** Answered requests per second over the run. */
  rate: number;
  /** Latency from each request's due time to its complete answer (ms). */
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Latency from handing the request to a free connection to its answer (ms): the same minus the wait for a connection and for the timer. */
  serviceMs: { p50: number; p99: number };
  /** How late the timer dispatched requests (ms): the generator's own lag. */
  dispatchLagMs: { p50: number; p99: number; max: number };
  cpuUsPerRequest: number;
  /** The 50 ms windows (by due time, ms since the start) whose slowest request took over 20 ms, with that latency: when the tail happens. */
  slowWindows: Array<[number, number]>;
}

const WINDOW_MS = 50;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! * 100) / 100;
}

async function readStdin(): Promise<string> {
  let s = "";
  for await (const chunk of process.stdin) s += chunk;
  return s;
}

async function run(job: LoadJob): Promise<LoadResult> {
  const pool = new Pool(job.url, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const seq = new Array<number>(job.devices.length).fill(0);
  let next = 0;
  const request = (): { path: string; headers: Record<string, string>; body: string } => {
    const i = next++ % job.devices.length;
    const d = job.devices[i]!;
    const readings: string[] = [];
    for (let k = 0; k < job.readingsPerRequest; k++) {
      const n = seq[i]!++;
      readings.push(`{"t":${job.baseT + n * 1000},"pm":${(n % 300) / 10},"co2":${500 + (n % 400)},"tmp":21.5,"hum":40}`);
    }
    return {
      path: `/v1/devices/${d.id}/readings`,
      headers: { authorization: `Bearer ${d.token}`, "content-type": "application/json" },
      body: `{"readings":[${readings.join(",")}]}`,
    };
  };

  const total = Math.floor(job.rate * (job.warmupS + job.durationS));
  const latency = new Float64Array(total);
  const service = new Float64Array(total);
  const lag = new Float64Array(total);
  let answered = 0; // in the measured seconds
  let lagged = 0;
  let done = 0; // all answers and failures, warm-up included
  let errors = 0;
  let sent = 0;
  const status: Record<string, number> = {};
  let inFlight = 0;
  const windowMax: number[] = [];
  let started = 0;
  let measureFrom = Number.POSITIVE_INFINITY;
  const queue: number[] = []; // due times of requests waiting for a free connection
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const settle = () => {
    if (done >= total) finish();
  };

  const answer = (code: string, dueAt: number, writtenAt: number) => {
    const now = performance.now();
    done++;
    const measured = dueAt >= measureFrom; // not a warm-up request
    if (measured) status[code] = (status[code] ?? 0) + 1;
    if (measured && code[0] === "2") {
      const w = Math.floor((dueAt - measureFrom) / WINDOW_MS);
      windowMax[w] = Math.max(windowMax[w] ?? 0, now - dueAt);
      latency[answered] = now - dueAt;
      service[answered] = now - writtenAt;
      answered++;
    } else if (measured) {
      errors++;
    }
  };
  const send = (dueAt: number) => {
    inFlight++;
    sent++;
    const writtenAt = performance.now();
    pool
      .request({ method: "POST", ...request() })
      .then(
        async (res) => {
          await res.body.dump();
          answer(String(res.statusCode), dueAt, writtenAt);
        },
        () => answer("error", dueAt, writtenAt),
      )
      .finally(() => {
        inFlight--;
        const due = queue.shift();
        if (due !== undefined) send(due);
        settle();
      });
  };

  started = performance.now();
  measureFrom = started + job.warmupS * 1000;
  let cpu0 = process.cpuUsage();
  setTimeout(() => (cpu0 = process.cpuUsage()), job.warmupS * 1000);
  const intervalMs = 1000 / job.rate;
  let i = 0;
  const tick = () => {
    const now = performance.now();
    while (i < total && started + i * intervalMs <= now) {
      const dueAt = started + i * intervalMs;
      if (dueAt >= measureFrom) lag[lagged++] = now - dueAt;
      i++;
      if (inFlight < job.connections) send(dueAt);
      else queue.push(dueAt);
    }
    if (i < total) setTimeout(tick, Math.max(0, started + i * intervalMs - performance.now()));
  };
  tick();
  const deadline = setTimeout(finish, (job.warmupS + job.durationS) * 1000 + 30_000);
  await finished;
  clearTimeout(deadline);
  const elapsedS = (performance.now() - measureFrom) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await pool.close();
  const lat = latency.subarray(0, answered).sort();
  const svc = service.subarray(0, answered).sort();
  const lg = lag.subarray(0, lagged).sort();
  return {
    sent,
    status,
    errors,
    rate: Math.round(answered / elapsedS),
    latencyMs: { p50: percentile(lat, 50), p90: percentile(lat, 90), p99: percentile(lat, 99), p999: percentile(lat, 99.9), max: percentile(lat, 100) },
    serviceMs: { p50: percentile(svc, 50), p99: percentile(svc, 99) },
    dispatchLagMs: { p50: percentile(lg, 50), p99: percentile(lg, 99), max: percentile(lg, 100) },
    cpuUsPerRequest: Math.round((cpu.user + cpu.system) / Math.max(1, answered)),
    slowWindows: windowMax.flatMap((ms, w) => (ms > 20 ? [[w * WINDOW_MS, Math.round(ms)] as [number, number]] : [])),
  };
}

const job = JSON.parse(await readStdin()) as LoadJob;
process.stdout.write(`${JSON.stringify(await run(job))}\n`);
process.exit(0);
