// `airtwin simulate` against a real `airtwin dev` (nats-server, a node, the gateway), found through the
// data dir as a user would: over HTTP every accepted reading reaches its twin (readings + duplicates =
// accepted; the purposely resent uploads show up as duplicates), over NATS likewise; a UCI CSV replay
// lands whole with the file's values; a refused device (its token wrong) makes the run exit 1.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { getFreePort } from "../harness/free-port.ts";
import { waitFor } from "../harness/wait-for.ts";
import { AirtwinProcess, runAirtwin } from "./processes.ts";

let dataDir: string;
let dev: AirtwinProcess;
let gateway: string;
let admin: Record<string, string>;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "airtwin-simulate-e2e-"));
  const port = await getFreePort();
  dev = new AirtwinProcess("dev", ["dev", "--nodes", "1"], { AIRTWIN_DATA_DIR: dataDir, AIRTWIN_HTTP_PORT: String(port), NATS_URL: undefined, AIRTWIN_ADMIN_TOKEN: undefined, GATEWAY_URL: undefined });
  gateway = await waitFor(
    () => {
      if (!dev.running) throw new Error(`airtwin dev exited:\n${dev.output()}`);
      return dev.output().includes("Ctrl-C stops everything") ? /^GATEWAY_URL=(\S+)$/m.exec(dev.output())?.[1] : undefined;
    },
    { timeoutMs: 90_000, message: "airtwin dev is up" },
  );
  admin = { authorization: `Bearer ${/^AIRTWIN_ADMIN_TOKEN=(\S+)$/m.exec(dev.output())![1]}` };
}, 120_000);

afterAll(async () => {
  if (dev?.running) await dev.stop(60_000);
  rmSync(dataDir, { recursive: true, force: true });
});

/** Runs `airtwin simulate` with the dev cluster's data dir (and nothing else) to find it. */
const simulate = (args: string[]) => runAirtwin(["simulate", "--quiet", ...args], { AIRTWIN_DATA_DIR: dataDir, NATS_URL: undefined, AIRTWIN_ADMIN_TOKEN: undefined, GATEWAY_URL: undefined });

const twin = async (id: string): Promise<TwinView> => {
  const res = await fetch(`${gateway}/v1/devices/${id}`, { headers: admin });
  expect(res.status).toBe(200);
  return (await res.json()) as TwinView;
};

const summaryNumber = (out: string, name: string) => Number(new RegExp(`${name} ([\\d,]+)`).exec(out)![1]!.replace(/,/g, ""));

describe("airtwin simulate", () => {
  it("over HTTP: every accepted reading is applied, resent uploads counted as duplicates", { timeout: 120_000 }, async () => {
    const run = await simulate(["--devices", "4", "--id-prefix", "h", "--interval", "1m", "--speed", "1200", "--duration", "6s", "--duplicates", "0.3", "--seed", "5"]);
    expect(run.code, run.out).toBe(0);
    const accepted = summaryNumber(run.out, "accepted");
    const resent = summaryNumber(run.out, "resent on purpose");
    expect(summaryNumber(run.out, "rejected")).toBe(0);
    expect(accepted).toBeGreaterThan(40);
    expect(resent).toBeGreaterThan(0);
    const ids = ["h-01", "h-02", "h-03", "h-04"];
    await waitFor(async () => {
      const views = await Promise.all(ids.map(twin));
      return views.reduce((n, v) => n + v.readings + v.duplicates + v.late, 0) === accepted;
    }, { timeoutMs: 30_000, message: "every accepted reading applied" });
    const views = await Promise.all(ids.map(twin));
    expect(views.reduce((n, v) => n + v.duplicates, 0)).toBeGreaterThan(0);
    for (const v of views) expect(v.channels.co2!.count).toBe(v.readings);
    // the devices belong to the simulator's user and are listed
    const listed = (await (await fetch(`${gateway}/v1/devices`, { headers: admin })).json()) as { devices: Array<{ deviceId: string; ownerId: string }> };
    expect(listed.devices.filter((d) => d.deviceId.startsWith("h-")).map((d) => d.ownerId)).toEqual(["sim", "sim", "sim", "sim"]);
  });

  it("over NATS: the devices are registered and their readings applied", { timeout: 120_000 }, async () => {
    const run = await simulate(["--transport", "nats", "--devices", "3", "--id-prefix", "n", "--interval", "1m", "--speed", "1200", "--duration", "5s", "--no-faults"]);
    expect(run.code, run.out).toBe(0);
    const accepted = summaryNumber(run.out, "accepted");
    expect(accepted).toBeGreaterThan(30);
    await waitFor(async () => (await Promise.all(["n-01", "n-02", "n-03"].map(twin))).reduce((n, v) => n + v.readings, 0) === accepted, {
      timeoutMs: 30_000,
      message: "every reading sent over NATS applied",
    });
  });

  it("replays the UCI CSV as a backfill: every row lands, with the file's values", { timeout: 120_000 }, async () => {
    const file = resolve(import.meta.dirname, "../../data/uci-occupancy/datatest.txt");
    const run = await simulate(["--csv", file, "--map", "co2=CO2,tmp=Temperature,hum=Humidity", "--devices", "1", "--id-prefix", "csv"]);
    expect(run.code, run.out).toBe(0);
    expect(summaryNumber(run.out, "accepted")).toBe(2665);
    const rows = readFileSync(file, "utf8").trim().split("\n").slice(1).map((l) => l.split(","));
    const co2 = rows.map((r) => Number(r[5]));
    const view = await waitFor(async () => {
      const v = await twin("csv-01");
      return v.readings === 2665 ? v : undefined;
    }, { timeoutMs: 30_000, message: "the whole file applied" });
    expect(view.channels.co2!.max).toBe(Math.max(...co2));
    expect(view.channels.co2!.mean).toBeCloseTo(co2.reduce((a, b) => a + b, 0) / co2.length, 6);
    expect(view.channels.tmp!.count).toBe(2665);
  });

  it("exits 1 when readings are rejected, naming the code", { timeout: 120_000 }, async () => {
    const first = await simulate(["--devices", "1", "--id-prefix", "bad", "--interval", "200ms", "--duration", "2s", "--no-faults"]);
    expect(first.code, first.out).toBe(0);
    const fleetFile = join(dataDir, "simulate", "bad.json");
    const f = JSON.parse(readFileSync(fleetFile, "utf8")) as { tokens: Record<string, string> };
    f.tokens["bad-01"] = "not-the-token";
    writeFileSync(fleetFile, JSON.stringify(f));
    const run = await simulate(["--devices", "1", "--id-prefix", "bad", "--interval", "200ms", "--duration", "2s", "--no-faults"]);
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/rejected [1-9].*AIRTWIN_ERR_AUTH/);
    expect(run.out).toContain("rejected unexpectedly");
  });

  it("refuses bad options before sending anything (exit 2, coded)", { timeout: 60_000 }, async () => {
    const run = await simulate(["--rate", "10", "--interval", "1m"]);
    expect(run.code).toBe(2);
    expect(run.out).toContain("AIRTWIN_ERR_SIM_OPTIONS_INVALID");
    const map = await simulate(["--csv", resolve(import.meta.dirname, "../../data/uci-occupancy/datatest.txt"), "--map", "pm=PM25", "--id-prefix", "m"]);
    expect(map.code).toBe(1);
    expect(map.out).toContain("AIRTWIN_ERR_SIM_CSV_INVALID");
  });
});
