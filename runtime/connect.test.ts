// connectNats connects with the runtime's settings and wraps a failed first connect in
// AIRTWIN_ERR_NATS_UNAVAILABLE; closeNats drains, closes, and is bounded when NATS is gone.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getFreePort } from "../test/harness/free-port.ts";
import { startNatsServer, type TestNatsServer } from "../test/harness/nats-server.ts";
import { waitFor } from "../test/harness/wait-for.ts";
import { loadConfig } from "./config.ts";
import { closeNats, connectNats, credentialsOf, maskUrl, natsServerList } from "./connect.ts";
import { isRuntimeError, RuntimeError } from "./errors.ts";

describe("natsServerList", () => {
  it.each([
    [undefined, ["nats://127.0.0.1:4222"]],
    ["nats://a:1", ["nats://a:1"]],
    ["nats://a:1, nats://b:2", ["nats://a:1", "nats://b:2"]],
    [["x:1", " y:2 "], ["x:1", "y:2"]],
  ])("%j → %j", (input, expected) => {
    expect(natsServerList(input)).toEqual(expected);
  });
});

describe("connectNats", () => {
  let ns: TestNatsServer;
  beforeAll(async () => {
    ns = await startNatsServer({ jetstream: false });
  });
  afterAll(async () => {
    await ns?.stop();
  });

  it("connects with the given name and reconnects without limit", async () => {
    const nc = await connectNats({ servers: ns.url, name: "airtwin test-node" });
    expect(nc.getServer()).toBe(`127.0.0.1:${ns.port}`);
    const connz = await (await fetch(`${ns.monitorUrl}/connz`)).json() as { connections: { name?: string }[] };
    expect(connz.connections.map((c) => c.name)).toContain("airtwin test-node");
    await closeNats(nc);
    expect(nc.isClosed()).toBe(true);
    await closeNats(nc); // idempotent
  });

  it("comes back after the server restarts", async () => {
    const nc = await connectNats({ servers: ns.url, reconnectTimeWaitMs: 50 });
    const events: string[] = [];
    void (async () => {
      for await (const s of nc.status()) events.push(s.type);
    })();
    await ns.kill("SIGKILL");
    await ns.restart();
    await waitFor(() => events.includes("reconnect"), { message: "client reconnected" });
    await nc.flush();
    expect(nc.isClosed()).toBe(false);
    await closeNats(nc);
  });

  it("wraps a failed first connect in AIRTWIN_ERR_NATS_UNAVAILABLE", async () => {
    const port = await getFreePort();
    const err = await connectNats({ servers: `nats://127.0.0.1:${port}`, connectTimeoutMs: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect(isRuntimeError(err, "NATS_UNAVAILABLE")).toBe(true);
    expect((err as RuntimeError).message).toContain(`nats://127.0.0.1:${port}`);
    expect((err as RuntimeError).details).toEqual({ servers: [`nats://127.0.0.1:${port}`] });
    expect((err as RuntimeError).cause).toBeDefined();
  });
});

describe("closeNats", () => {
  it("flushes pending publishes before closing", async () => {
    await using ns = await startNatsServer({ jetstream: false });
    const sub = await connectNats({ servers: ns.url });
    const got: string[] = [];
    sub.subscribe("drain.test", {
      callback: (_e, m) => {
        got.push(m.string());
      },
    });
    await sub.flush();
    const pub = await connectNats({ servers: ns.url });
    for (let i = 0; i < 100; i++) pub.publish("drain.test", String(i));
    await closeNats(pub);
    await waitFor(() => got.length === 100, { message: "all 100 messages delivered" });
    await closeNats(sub);
  });

  it("returns within its bound when the server is gone", async () => {
    const ns = await startNatsServer({ jetstream: false });
    const nc = await connectNats({ servers: ns.url });
    await ns.stop();
    const started = Date.now();
    await closeNats(nc, 500);
    expect(nc.isClosed()).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe("credentials in NATS_URL", () => {
  it.each([
    [["nats://a:1"], { servers: ["nats://a:1"] }],
    [["nats://svc:p%40ss@a:1", "nats://b:2"], { servers: ["nats://a:1", "nats://b:2"], user: "svc", pass: "p@ss" }],
    [["tls://t0ken@a:1", "tls://t0ken@b:2"], { servers: ["tls://a:1", "tls://b:2"], token: "t0ken" }],
    [["nats://svc:@a:1"], { servers: ["nats://a:1"], user: "svc", pass: "" }],
  ])("credentialsOf(%j)", (servers, expected) => {
    expect(credentialsOf(servers)).toEqual(expected);
  });

  it("refuses servers naming different credentials, without showing them", () => {
    const err = (() => {
      try {
        credentialsOf(["nats://u:one@a:1", "nats://u:two@b:2"]);
      } catch (e) {
        return e as RuntimeError;
      }
      return undefined;
    })();
    expect(isRuntimeError(err, "CONFIG_INVALID")).toBe(true);
    expect(err!.message).not.toMatch(/one|two/);
  });

  it("masks passwords and tokens for printing", () => {
    expect(maskUrl("nats://svc:secret@a:1,tls://tok@b:2,nats://c:3")).toBe("nats://svc:***@a:1,tls://***@b:2,nats://c:3");
  });

  it("connects to a server that requires a user and password, and never shows the password", async () => {
    await using ns = await startNatsServer({ jetstream: true, extraConfig: 'authorization { user: "airtwin", password: "s3cret-pw" }' });
    const host = new URL(ns.url).host;
    const nc = await connectNats({ servers: `nats://airtwin:s3cret-pw@${host}` });
    // JetStream answers too: the connection is authenticated
    const info = await nc.request("$JS.API.INFO", undefined, { timeout: 5000 });
    expect(JSON.parse(info.string())).toHaveProperty("streams");
    await closeNats(nc);

    const err = (await connectNats({ servers: `nats://airtwin:wrong-pw@${host}`, connectTimeoutMs: 2000 }).catch((e: unknown) => e)) as RuntimeError;
    expect(isRuntimeError(err, "NATS_UNAVAILABLE")).toBe(true);
    expect(err.message).toMatch(/Authorization Violation/i);
    expect(`${err.message} ${JSON.stringify(err.details)}`).not.toContain("wrong-pw");
    expect(err.message).toContain(`nats://airtwin:***@${host}`);
    // without credentials the server refuses
    expect(isRuntimeError(await connectNats({ servers: `nats://${host}`, connectTimeoutMs: 2000 }).catch((e: unknown) => e), "NATS_UNAVAILABLE")).toBe(true);
  });

  it("connects to a server that requires a token", async () => {
    await using ns = await startNatsServer({ jetstream: false, extraConfig: 'authorization { token: "t0ken-abc" }' });
    const nc = await connectNats({ servers: `nats://t0ken-abc@${new URL(ns.url).host}` });
    await nc.flush();
    await closeNats(nc);
  });

  it("keeps passwords out of configuration errors", () => {
    const err = (() => {
      try {
        loadConfig({ NATS_URL: "http://svc:hunter2@a:1" });
      } catch (e) {
        return e as RuntimeError;
      }
      return undefined;
    })();
    expect(isRuntimeError(err, "CONFIG_INVALID")).toBe(true);
    expect(`${err!.message} ${JSON.stringify(err!.details)}`).not.toContain("hunter2");
  });
});
