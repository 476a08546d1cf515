// `airtwin dev` as a newcomer uses it: it prints the gateway URL, the admin token and the NATS URL;
// the README's curl steps work against it; Ctrl-C stops every child; starting again keeps all state and
// the admin token.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { getFreePort, isPortFree } from "../harness/free-port.ts";
import { waitFor } from "../harness/wait-for.ts";
import { AirtwinProcess } from "./processes.ts";

const dirs: string[] = [];
const procs: AirtwinProcess[] = [];
afterEach(async () => {
  // SIGTERM lets airtwin dev stop its children (a SIGKILLed supervisor would orphan them)
  for (const p of procs.splice(0)) if (p.running) await p.stop(60_000);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function startDev(dataDir: string, port: number): Promise<{ dev: AirtwinProcess; gateway: string; token: string; nats: string }> {
  const dev = new AirtwinProcess("dev", ["dev", "--nodes", "1"], { AIRTWIN_DATA_DIR: dataDir, AIRTWIN_HTTP_PORT: String(port), NATS_URL: undefined, AIRTWIN_ADMIN_TOKEN: undefined });
  procs.push(dev);
  const gateway = await waitFor(
    () => {
      if (!dev.running) throw new Error(`airtwin dev exited:\n${dev.output()}`);
      return dev.output().includes("Ctrl-C stops everything") ? /^GATEWAY_URL=(\S+)$/m.exec(dev.output())?.[1] : undefined;
    },
    { timeoutMs: 90_000, message: "airtwin dev is up" },
  );
  const token = /^AIRTWIN_ADMIN_TOKEN=(\S+)$/m.exec(dev.output())![1]!;
  const nats = /^NATS_URL=(\S+)$/m.exec(dev.output())![1]!;
  return { dev, gateway, token, nats };
}

describe("airtwin dev", () => {
  it("runs NATS, a node and the gateway; stops them all on Ctrl-C; keeps state across restarts", { timeout: 240_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "airtwin-dev-e2e-"));
    dirs.push(dataDir);
    const port = await getFreePort();
    const first = await startDev(dataDir, port);
    expect(first.gateway).toBe(`http://127.0.0.1:${port}`);
    expect(first.nats).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(first.nats).not.toBe("nats://127.0.0.1:4222");
    expect(readFileSync(join(dataDir, "admin-token"), "utf8").trim()).toBe(first.token);
    expect(first.dev.output()).toContain(`${first.gateway}/docs`);

    // the README's steps
    const admin = { authorization: `Bearer ${first.token}`, "content-type": "application/json" };
    const user = (await (await fetch(`${first.gateway}/v1/users`, { method: "POST", headers: admin, body: JSON.stringify({ userId: "alice" }) })).json()) as { apiKey: string };
    const device = (await (await fetch(`${first.gateway}/v1/devices`, { method: "POST", headers: admin, body: JSON.stringify({ deviceId: "kitchen", ownerId: "alice" }) })).json()) as { token: string };
    const t = Date.now();
    const posted = await fetch(`${first.gateway}/v1/devices/kitchen/readings`, {
      method: "POST",
      headers: { authorization: `Bearer ${device.token}`, "content-type": "application/json" },
      body: JSON.stringify({ readings: [{ t, pm: 12.5, co2: 640, tmp: 21.3, hum: 41 }] }),
    });
    expect(posted.status).toBe(202);
    const read = async (gateway: string) => (await (await fetch(`${gateway}/v1/devices/kitchen`, { headers: { authorization: `Bearer ${user.apiKey}` } })).json()) as TwinView;
    await waitFor(async () => (await read(first.gateway)).readings === 1, { timeoutMs: 20_000 });

    const natsPid = (JSON.parse(readFileSync(join(dataDir, "dev.lock"), "utf8")) as { natsPid: number }).natsPid;
    first.dev.child.kill("SIGINT");
    expect(await first.dev.exited).toBe(0);
    expect(first.dev.output()).toContain("airtwin dev: stopped");
    expect(await isPortFree(port)).toBe(true);
    expect(() => process.kill(natsPid, 0)).toThrow();
    expect(readFileSync(join(dataDir, "logs", "gateway.log"), "utf8")).toContain("gateway stopping");

    const second = await startDev(dataDir, port);
    expect(second.token).toBe(first.token);
    const view = await waitFor(async () => {
      const v = await read(second.gateway).catch(() => undefined);
      return v?.readings === 1 ? v : undefined;
    }, { timeoutMs: 30_000, message: "the twin, the user and the device survived the restart" });
    expect(view.channels.co2?.last).toBe(640);
    second.dev.child.kill("SIGTERM");
    expect(await second.dev.exited).toBe(0);
  });
});
