// `npm run bench -- gateway-memory [--devices N] [--runs R] [--no-post]`
//
// What a gateway's registry view costs per registered device (issue #16 §2: a million devices in < 8 GB,
// the gateway being the second-largest process). Against a private nats-server, each measurement in a
// fresh `node --expose-gc` child so one does not inherit the other's heap:
//   - baseline: the same N device ids and tokens in a plain Map<string, string> (what the information
//     itself costs in JavaScript);
//   - import: a Registry that registers the N devices through the bulk import (importDevices, 10,000 a
//     call: the view filled by read-your-write, as on the gateway an operator imports through);
//   - watch: a second Registry on the same bucket (another gateway, or one restarted: the view filled by
//     the KV watch).
// Unless --no-post, each device then "posts" once — its token taken from an `Authorization: Bearer`
// header like a request's and verified — so the verified-token cache is full. Heap used + external
// (ArrayBuffers) after a full GC and RSS, each minus the process's before the devices; per device,
// median of R runs (default 3), with the ratio to the baseline.
import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bearerToken } from "../gateways/http/auth.ts";
import { DEVICE_IMPORT_MAX } from "../gateways/registry/device-import.ts";
import { Registry } from "../gateways/registry/registry.ts";
import { connectNats } from "../runtime/mod.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { flag, int, parseArgs, str } from "./lib/args.ts";
import { deviceId } from "./lib/fleet.ts";
import { emit, median, note, round } from "./lib/report.ts";
import { loadAverage } from "./peers/workload.ts";

const BENCH_JS = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "bench.js");
type Mode = "baseline" | "import" | "watch";

/** What a child measured: bytes per device. */
interface Measured {
  mode: Mode;
  registeredHeap: number;
  registeredRss: number;
  postedHeap: number;
  postedRss: number;
  peakRssMb: number;
  /** Time of one verifyDevice with a token verified before (ns; the posting path's repeat requests). */
  verifyNs: number;
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.has("child")) return child(str(args, "child") as Mode, args);
  const devices = int(args, "devices", 200_000);
  const runs = int(args, "runs", 3);
  const post = !flag(args, "no-post");
  note("gateway-memory", { devices, runs, post, load: loadAverage() });
  await using ns = await startNatsServer();
  const results: Measured[] = [];
  for (let run = 0; run < runs; run++) {
    const prefix = `gm${run}`;
    const tokens = join(tmpdir(), `airtwin-gateway-memory-${process.pid}-${run}.txt`);
    try {
      // import first: it writes the tokens the others read
      for (const mode of ["import", "watch", "baseline"] as const) {
        const m = await runChild(mode, ["--nats", ns.url, "--prefix", prefix, "--devices", String(devices), "--tokens", tokens, ...(post ? [] : ["--no-post"])]);
        note(mode, { run, ...m });
        results.push(m);
      }
    } finally {
      rmSync(tokens, { force: true });
    }
  }
  const med = (mode: Mode, k: keyof Omit<Measured, "mode">) => median(results.filter((r) => r.mode === mode).map((r) => r[k]));
  const base = med("baseline", post ? "postedHeap" : "registeredHeap");
  for (const mode of ["import", "watch"] as const) {
    const heap = med(mode, post ? "postedHeap" : "registeredHeap");
    emit({
      suite: "gateway-memory",
      name: `gateway-memory.${mode}.heap-per-device`,
      value: round(heap),
      unit: `bytes of heap + external per registered device${post ? " (each posted once)" : ""}`,
      baseline: { name: "plain Map<string, string> of ids and tokens", value: round(base) },
      detail: {
        devices,
        runs,
        ratioToBaseline: round(heap / base),
        registeredHeap: round(med(mode, "registeredHeap")),
        postedHeap: round(med(mode, "postedHeap")),
        registeredRss: round(med(mode, "registeredRss")),
        postedRss: round(med(mode, "postedRss")),
        peakRssMb: round(med(mode, "peakRssMb")),
        verifyNs: round(med(mode, "verifyNs")),
        baselineRss: round(med("baseline", post ? "postedRss" : "registeredRss")),
        load: loadAverage(),
      },
    });
  }
}

function runChild(mode: Mode, rest: string[]): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", BENCH_JS, "gateway-memory", "--child", mode, ...rest], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!) as Measured) : reject(new Error(`${mode} child exited ${code}`))));
  });
}

const gc = (): void => {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) throw new Error("run with --expose-gc");
  for (let i = 0; i < 3; i++) g();
};

/** Heap used + external, and RSS, after a full GC. */
function footprint(): { heap: number; rss: number } {
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

/** Registers the devices through the bulk import; their tokens go to the file (not kept in the heap). */
async function importAll(registry: Registry, devices: number, tokens: string): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < devices; i += DEVICE_IMPORT_MAX) {
    const entries = Array.from({ length: Math.min(DEVICE_IMPORT_MAX, devices - i) }, (_, k) => ({ deviceId: deviceId(i + k), ownerId: "fleet" }));
    for (const r of await registry.importDevices(entries)) {
      if (!("token" in r)) throw new Error(`device ${r.deviceId} not registered: ${r.code}`);
      lines.push(`${r.deviceId}\tBearer ${r.token}\n`);
    }
  }
  writeFileSync(tokens, lines.join(""));
}

/** ns per verifyDevice of every device's (verified, unless --no-post) token: 3 passes, the median. */
function timeVerify(registry: Registry, tokens: string): number {
  const ids: string[] = [];
  const bearer: string[] = [];
  for (const { id, header } of tokenLines(tokens)) {
    ids.push(id);
    bearer.push(bearerToken({ headers: { authorization: header } } as never)!);
  }
  const passes: number[] = [];
  for (let pass = 0; pass < 3; pass++) {
    const t0 = process.hrtime.bigint();
    let ok = 0;
    for (let i = 0; i < ids.length; i++) if (registry.verifyDevice(ids[i]!, bearer[i]!)) ok++;
    passes.push(Number(process.hrtime.bigint() - t0) / ids.length);
    if (ok !== ids.length) throw new Error(`${ids.length - ok} devices refused`);
  }
  return round(median(passes));
}

/** Each line of the tokens file: `<deviceId>\tBearer <token>` (the header a request brings). */
function* tokenLines(file: string): Generator<{ id: string; header: string; token: string }> {
  const buf = readFileSync(file);
  for (let at = 0; at < buf.length; ) {
    const tab = buf.indexOf(9, at);
    const end = buf.indexOf(10, tab);
    // latin1 decoding makes flat strings, as the HTTP parser's are
    yield { id: buf.toString("latin1", at, tab), header: buf.toString("latin1", tab + 1, end), token: buf.toString("latin1", tab + 8, end) };
    at = end + 1;
  }
}

async function child(mode: Mode, args: ReturnType<typeof parseArgs>): Promise<void> {
  const devices = int(args, "devices", 200_000);
  const tokens = str(args, "tokens");
  const post = !flag(args, "no-post");
  const nc = mode === "baseline" ? undefined : await connectNats({ servers: str(args, "nats") });
  // before the registry: a watch-loaded view is filled while it opens
  const before = footprint();
  const registry = nc === undefined ? undefined : await Registry.open(nc, { prefix: str(args, "prefix"), loadTimeoutMs: 120_000 });
  if (mode === "import") await registry!.createUser("fleet");
  const plain = new Map<string, string>();
  if (mode === "import") await importAll(registry!, devices, tokens);
  else if (mode === "baseline") for (const { id, token } of tokenLines(tokens)) plain.set(id, token);
  const registered = footprint();
  if (post && registry !== undefined) {
    for (const { id, header } of tokenLines(tokens)) {
      if (!registry.verifyDevice(id, bearerToken({ headers: { authorization: header } } as never)!)) throw new Error(`device ${id} refused`);
    }
  }
  const posted = footprint();
  const verifyNs = registry === undefined ? 0 : timeVerify(registry, tokens);
  if (registry !== undefined && registry.size.devices !== devices) throw new Error(`the view holds ${registry.size.devices} devices, not ${devices}`);
  if (plain.size !== (mode === "baseline" ? devices : 0)) throw new Error("baseline incomplete");
  const perDevice = (x: number, y: number) => round((x - y) / devices);
  const out: Measured = {
    mode,
    registeredHeap: perDevice(registered.heap, before.heap),
    registeredRss: perDevice(registered.rss, before.rss),
    postedHeap: perDevice(posted.heap, before.heap),
    postedRss: perDevice(posted.rss, before.rss),
    peakRssMb: round(process.resourceUsage().maxRSS / 1024),
    verifyNs,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await registry?.close();
  await nc?.close();
}
