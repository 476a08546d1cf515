// The single-server harness starts a real nats-server, serves core NATS and JetStream, survives
// kill/restart with its store, stops cleanly, and says what to install when the binary is missing.

import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { isPortFree } from "./free-port.ts";
import { NatsServerMissingError, startNatsServer, type TestNatsServer } from "./nats-server.ts";
import { waitFor } from "./wait-for.ts";

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startNatsServer", () => {
  let ns: TestNatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    ns = await startNatsServer();
    nc = await connect({ servers: ns.url, noAsyncTraces: true, reconnectTimeWait: 50 });
  });
  afterAll(async () => {
    await nc?.close();
    await ns?.stop();
  });

  it("listens on a free port of 127.0.0.1, not the machine's 4222", () => {
    expect(ns.url).toBe(`nats://127.0.0.1:${ns.port}`);
    expect(ns.port).not.toBe(4222);
    expect(processExists(ns.pid)).toBe(true);
    expect(existsSync(`${ns.dir}/nats-server.log`)).toBe(true);
  });

  it("serves publish/subscribe", async () => {
    const sub = nc.subscribe("harness.ping", { max: 1 });
    nc.publish("harness.ping", "hello");
    for await (const m of sub) expect(m.string()).toBe("hello");
    expect(sub.getProcessed()).toBe(1);
  });

  it("serves JetStream: a stream put and get", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "HARNESS", subjects: ["harness.js.>"] });
    const ack = await jetstream(nc).publish("harness.js.a", "stored");
    expect(ack.stream).toBe("HARNESS");
    const m = await jsm.streams.getMessage("HARNESS", { seq: ack.seq });
    expect(m?.string()).toBe("stored");
  });

  it("keeps port and store across kill -9 and restart", async () => {
    const jsm = await jetstreamManager(nc, { timeout: 1000 });
    await jsm.streams.add({ name: "DURABLE", subjects: ["harness.durable"] });
    const ack = await jetstream(nc).publish("harness.durable", "survives");
    const oldPid = ns.pid;
    await ns.kill("SIGKILL");
    expect(ns.running).toBe(false);
    expect(processExists(oldPid)).toBe(false);
    await ns.restart();
    expect(ns.pid).not.toBe(oldPid);
    expect(ns.url).toBe(`nats://127.0.0.1:${ns.port}`);
    // the client reconnects on its own to the same URL
    const m = await waitFor(() => jsm.streams.getMessage("DURABLE", { seq: ack.seq }), {
      message: "stored message readable after restart",
    });
    expect(m.string()).toBe("survives");
  });
});

describe("stop", () => {
  it("ends the process, frees the port and removes the temp dir", async () => {
    const ns = await startNatsServer();
    const { pid, port, dir } = ns;
    expect(await isPortFree(port)).toBe(false);
    await ns.stop();
    expect(processExists(pid)).toBe(false);
    expect(await isPortFree(port)).toBe(true);
    expect(existsSync(dir)).toBe(false);
  });

  it("keeps the temp dir when asked, for debugging", async () => {
    const ns = await startNatsServer({ keep: true });
    await ns.stop();
    expect(existsSync(`${ns.dir}/nats-server.log`)).toBe(true);
    const { rmSync } = await import("node:fs");
    rmSync(ns.dir, { recursive: true, force: true });
  });

  it("is what `await using` calls", async () => {
    let pid = 0;
    {
      await using ns = await startNatsServer({ jetstream: false });
      pid = ns.pid;
      expect(processExists(pid)).toBe(true);
    }
    expect(processExists(pid)).toBe(false);
  });
});

describe("missing binary", () => {
  it("throws NatsServerMissingError saying what to install", async () => {
    const env = { ...process.env, AIRTWIN_NATS_SERVER: "/nonexistent/bin/nats-server" };
    const err = await startNatsServer({ env }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsServerMissingError);
    const e = err as NatsServerMissingError;
    expect(e.code).toBe("AIRTWIN_ERR_DEPLOY_NATS_SERVER_MISSING");
    expect(e.message).toContain("AIRTWIN_NATS_SERVER=/nonexistent/bin/nats-server");
    expect(e.message).toContain("sudo apt-get install nats-server");
    expect(e.message).toContain("https://github.com/nats-io/nats-server/releases");
    expect(e.tried).toEqual(["/nonexistent/bin/nats-server"]);
  });

  it("searches PATH and the sbin dirs when AIRTWIN_NATS_SERVER is unset", async () => {
    const env = { PATH: "/nonexistent/bin" };
    const { resolveNatsServerBinary } = await import("../../deploy/local-nats.ts");
    // whatever this machine has, the lookup order is PATH first, then /usr/sbin
    try {
      expect(resolveNatsServerBinary(env)).toMatch(/\/usr\/(local\/)?s?bin\/nats-server$/);
    } catch (err) {
      expect(err).toBeInstanceOf(NatsServerMissingError);
      expect((err as NatsServerMissingError).tried[0]).toBe("/nonexistent/bin/nats-server");
    }
  });
});
