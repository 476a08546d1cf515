// `npm run bench -- runtime [--quick] [--parts throughput,cluster,memory] [--runs N] [--profile]
//                          [--cluster-twins N] [--moves N] [--kill other|coordinator] [--load readings/s]
//                          [--memory-twins N] [--shapes device,fleet] [--logs <dir>] [--snapshot-interval-ms N]
//                          [--default-v8-flags]   (throughput without the node's V8 flags, cli/role-v8-flags.ts)`
//
// The runtime suite: throughput against a plain-consumer floor, recovery after `kill -9`, planned-move
// pauses, and resident memory per twin against bare domain states. It starts a private nats-server
// (never the shared :4222), runs each part in a child process with the Node flags it needs (a fresh
// heap, `--expose-gc`, `--cpu-prof`), and passes their figures through: one JSON line each on stdout.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NODE_ROLE_V8_FLAGS } from "../cli/role-v8-flags.ts";
import { startNatsServer } from "../test/harness/nats-server.ts";
import { flag, int, parseArgs, str } from "./lib/args.ts";
import { summarizeProfile } from "./lib/cpuprofile.ts";
import { note, type Figure } from "./lib/report.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const BENCH_JS = join(ROOT, "bin", "bench.js");

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const quick = flag(args, "quick");
  const parts = str(args, "parts", "throughput,cluster,memory").split(",");
  const runs = int(args, "runs", quick ? 1 : 3);
  const common = quick ? ["--quick"] : [];
  const started = performance.now();
  await using ns = await startNatsServer();
  note("private nats-server", { url: ns.url, store: ns.storeDir });
  const run = (suite: string, nodeFlags: string[], extra: string[], forward = true) => child(nodeFlags, [suite, "--nats", ns.url, ...common, ...extra], forward);

  if (parts.includes("throughput")) {
    for (const shape of str(args, "shapes", "device,fleet").split(",")) {
      const prefix = `bt${shape[0]}`;
      const snap = typeof args.get("snapshot-interval-ms") === "string" ? ["--snapshot-interval-ms", args.get("snapshot-interval-ms") as string] : [];
      // the process runs the node runtime, so it gets the node's V8 flags (floor and domain bound run in it too)
      const v8 = flag(args, "default-v8-flags") ? [] : [...NODE_ROLE_V8_FLAGS];
      await run("runtime/throughput", v8, ["--prefix", prefix, "--shape", shape, "--runs", String(runs), ...snap]);
      if (flag(args, "profile")) {
        const dir = mkdtempSync(join(tmpdir(), `airtwin-prof-${shape}-`));
        await run("runtime/throughput", [...v8, "--cpu-prof", `--cpu-prof-dir=${dir}`], ["--prefix", prefix, "--shape", shape, "--runs", "1", "--only", "runtime"]);
        const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
        if (file !== undefined) process.stderr.write(`\nprofile (${shape} batches, runtime run, ${join(dir, file)}):\n${summarizeProfile(join(dir, file))}\n`);
      }
    }
  }
  if (parts.includes("cluster")) {
    const extra = ["--prefix", "bc", "--runs", String(runs)];
    if (typeof args.get("cluster-twins") === "string") extra.push("--twins", args.get("cluster-twins") as string);
    for (const k of ["moves", "kill", "load", "logs"]) if (typeof args.get(k) === "string") extra.push(`--${k}`, args.get(k) as string);
    await run("runtime/cluster", [], extra);
  }
  if (parts.includes("memory")) {
    const twins = int(args, "memory-twins", quick ? 100_000 : 1_000_000);
    // heap limit: ~4 KB per twin and room for the ingest's garbage
    const heapMb = Math.max(4096, Math.ceil((twins * 12_000) / 2 ** 20));
    const flags = ["--expose-gc", `--max-old-space-size=${heapMb}`];
    const bare = await run("runtime/memory", flags, ["--mode", "bare", "--twins", String(twins)], false);
    const bareBytes = bare.find((f) => f.name === "memory.bare-domain-state")?.value ?? 0;
    const dir = flag(args, "profile") ? mkdtempSync(join(tmpdir(), "airtwin-prof-memory-")) : undefined;
    const prof = dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${dir}`];
    await run("runtime/memory", [...flags, ...prof], ["--mode", "runtime", "--twins", String(twins), "--prefix", "bm", "--bare-bytes", String(bareBytes)]);
    const file = dir === undefined ? undefined : readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (dir !== undefined && file !== undefined) process.stderr.write(`\nprofile (memory, ${twins} twins ingested and committed on one node, ${join(dir, file)}):\n${summarizeProfile(join(dir, file))}\n`);
  }
  note("runtime suite done", { s: Math.round((performance.now() - started) / 1000) });
}

/**
 * Runs `node <flags> bin/bench.js <args>` and resolves with the figures it printed (passed through to
 * stdout unless `forward` is false); rejects on a non-zero exit.
 */
export function child(nodeFlags: string[], args: string[], forward = true): Promise<Figure[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...nodeFlags, BENCH_JS, ...args], { stdio: ["ignore", "pipe", "inherit"], cwd: ROOT });
    const figures: Figure[] = [];
    let buf = "";
    p.stdout.setEncoding("utf8");
    p.stdout.on("data", (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          figures.push(JSON.parse(line) as Figure);
        } catch {
          process.stderr.write(`${line}\n`);
          continue;
        }
        if (forward) process.stdout.write(`${line}\n`);
      }
    });
    p.on("error", reject);
    p.on("exit", (code, signal) => (code === 0 ? resolve(figures) : reject(new Error(`${args[0]} exited with ${code ?? signal}`))));
  });
}
