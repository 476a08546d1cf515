// The cluster bucket's compare-and-set against a real nats-server: a write based on a stale revision is
// refused (and not forced through by the retry meant for nats-server 2.9's numbering offset).
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCasConflict } from "../../../runtime/jetstream-errors.ts";
import { casUpdate, statedLastSequence } from "../../../runtime/ownership/lease.ts";
import { startNatsServer, type TestNatsServer } from "../../harness/nats-server.ts";

let ns: TestNatsServer;
beforeAll(async () => {
  ns = await startNatsServer();
});
afterAll(async () => {
  await ns?.stop();
});

const bytes = (s: string) => new TextEncoder().encode(s);

describe("casUpdate", () => {
  it("writes on the current revision, refuses a stale one with the server's stated last sequence, and never forces it", async () => {
    const nc = await connect({ servers: ns.url });
    try {
      const kv = await new Kvm(jetstream(nc)).create(`cas${process.pid}`, { history: 1 });
      const r1 = await kv.create("k", bytes("a"));
      const r2 = await casUpdate(kv, "k", bytes("b"), r1);
      expect(r2).toBeGreaterThan(r1);
      // someone else wrote meanwhile: r1 is stale, and a read shows r2, so nothing is retried
      const refused = await casUpdate(kv, "k", bytes("c"), r1).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(isCasConflict(refused)).toBe(true);
      expect(statedLastSequence(refused)).toBe(r2);
      expect(new TextDecoder().decode((await kv.get("k"))!.value)).toBe("b");
      // a refusal without a stated number, or any other error, states nothing
      expect(statedLastSequence(new Error("wrong last sequence: 5"))).toBeUndefined();
    } finally {
      await nc.close();
    }
  });
});
