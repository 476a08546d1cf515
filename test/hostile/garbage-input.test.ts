// Garbage on a shard's input subject, stored by JetStream like any input — not MessagePack, truncated,
// the wrong shape, an unknown version, huge, an unknown entity type, readings of the wrong types or out
// of range — against a real nats-server, node and gateway. Each is dead-lettered (a warn line, the
// metric, a letter on the DLQ stream); the shard neither crashes nor stalls: valid readings sent after
// the garbage are applied, and the twin's statistics are those of the valid readings alone.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { encodeBatch } from "../../runtime/envelope.ts";
import type { DeadLetter } from "../../runtime/dead-letter.ts";
import { decode, encode, msgpackHeaders, shardOf, type RunningNode } from "../../runtime/mod.ts";
import { rng } from "../harness/rng.ts";
import { waitFor } from "../harness/wait-for.ts";
import { admin, bearer, type GatewayFixture } from "../gateway/fixture.ts";
import { HostileCluster } from "./fixture.ts";

const SHARDS = 4;
const DEVICE = "garbage-1";
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);

let c: HostileCluster;
let f: GatewayFixture;
let node: RunningNode;
let token: string;

beforeAll(async () => {
  c = await HostileCluster.start(SHARDS);
  f = c.f;
  node = f.nodes[0]!;
  await f.user("owner");
  token = (await f.device(DEVICE, "owner")).token;
});

afterAll(async () => {
  await c?.[Symbol.asyncDispose]();
});

const item = (type: string, kind: string, payload: unknown) => encodeBatch({ acceptedAt: Date.now(), items: [{ type, entityId: DEVICE, kind, payload }] });

describe("garbage on the input stream", () => {
  it("is dead-lettered (log, metric, DLQ stream) while the shard goes on applying valid input", async () => {
    const valid = encodeBatch({ acceptedAt: Date.now(), items: [{ type: "twin", entityId: DEVICE, kind: "readings", payload: [{ t: T0, pm: 10 }] }] });
    const random = rng(15);
    const undecodable: Uint8Array[] = [
      Uint8Array.from({ length: 64 }, () => Math.floor(random() * 256)),
      valid.subarray(0, valid.length - 3),
      encode({ hello: "world" }),
      encode([2, Date.now(), []]), // a version this build does not know
      encode([1, "yesterday", []]),
      encode([1, Date.now(), [[1, 2, 3]]]),
      encode("x".repeat(900_000)),
    ];
    const unknownType = [item("thermostat", "readings", [{ t: T0, pm: 1 }])];
    const refused = [
      item("twin", "readings", "not an array"),
      item("twin", "readings", [{ t: "noon", pm: 10 }]),
      item("twin", "readings", [{ t: T0 + 1000, pm: 1e12 }]),
      item("twin", "readings", [{ t: T0 + 2000, pm: Number.NaN }]),
      item("twin", "readings", [{ t: T0 + 3000, pm: 10, extra: { deep: true } }]),
      // the array form (docs/design.md §5.1): [t, pm, co2, voc, tmp, hum, allpollu]
      item("twin", "readings", [["noon", 10]]),
      item("twin", "readings", [[T0 + 4000, 1e12]]),
      item("twin", "readings", [[T0 + 5000, null, null]]),
      item("twin", "readings", [[T0 + 6000, 10, 400, 100, 21, 40, 20, 7]]),
      item("twin", "readings", [[T0 + 7000, 10], { t: T0 + 8000, pm: 10 }]),
    ];
    const js = jetstream(await f.connect());
    const subject = `${f.prefix}.in.${shardOf(DEVICE, SHARDS)}`;
    // the empty message is the one NATS headers alone can carry
    await js.publish(subject, new Uint8Array(), { headers: msgpackHeaders() });
    for (const bytes of [...undecodable, ...unknownType, ...refused]) await js.publish(subject, bytes, { headers: msgpackHeaders() });

    // valid readings after the garbage are applied: the shard is neither crashed nor stuck
    const post = await f.app.inject({
      method: "POST",
      url: `/v1/devices/${DEVICE}/readings`,
      headers: bearer(token),
      payload: { readings: [{ t: T0 + 10_000, pm: 20 }, { t: T0 + 20_000, pm: 30 }] },
    });
    expect(post.statusCode).toBe(202);
    const view = await waitFor(
      async () => {
        const v = (await f.app.inject({ method: "GET", url: `/v1/devices/${DEVICE}`, headers: admin })).json<TwinView>();
        return v.readings === 2 ? v : undefined;
      },
      { timeoutMs: 20_000, message: "the valid readings applied after the garbage" },
    );
    // the statistics are those of the two valid readings only: nothing of the refused ones leaked in
    expect(view.channels.pm).toMatchObject({ count: 2, min: 20, max: 30, mean: 25 });

    const metrics = await node.runtime.metrics.registry.metrics();
    expect(metrics).toContain(`airtwin_dead_letters_total{source="input",reason="undecodable"} ${undecodable.length + 1}`);
    expect(metrics).toContain(`airtwin_dead_letters_total{source="input",reason="unknown-type"} ${unknownType.length}`);
    expect(metrics).toContain(`airtwin_dead_letters_total{source="input",reason="refused"} ${refused.length}`);
    const lines = c.logs.filter((l) => l.msg === "input dead-lettered");
    expect(lines.map((l) => l.fields?.reason).sort()).toEqual(
      [...Array(undecodable.length + 1).fill("undecodable"), ...Array(unknownType.length).fill("unknown-type"), ...Array(refused.length).fill("refused")].sort(),
    );
    expect(lines.every((l) => l.level === "warn")).toBe(true);
    // no shard gave up or restarted, nothing logged as an error
    expect(c.errors()).toEqual([]);

    // the letters are on the DLQ stream, with the original bytes
    const jsm = await jetstreamManager(await f.connect());
    const stream = `${f.prefix.toUpperCase()}_DLQ`;
    const total = undecodable.length + 1 + unknownType.length + refused.length;
    await waitFor(async () => (await jsm.streams.info(stream)).state.messages === total, { message: "every dead letter stored" });
    const first = decode<DeadLetter>((await jsm.streams.getMessage(stream, { seq: 2 }))!.data);
    expect(first).toMatchObject({ reason: "undecodable", source: "input", subject, shard: shardOf(DEVICE, SHARDS) });
    expect(Buffer.from(first.data)).toEqual(Buffer.from(undecodable[0]!));
    const huge = decode<DeadLetter>((await jsm.streams.getMessage(stream, { seq: 8 }))!.data);
    expect(huge.truncated).toBe(true);
    // the second refused item: after the empty message, the undecodable ones and the unknown type
    const refusedLetter = decode<DeadLetter>((await jsm.streams.getMessage(stream, { seq: 1 + undecodable.length + unknownType.length + 2 }))!.data);
    expect(refusedLetter).toMatchObject({ reason: "refused", entity: { type: "twin", id: DEVICE, kind: "readings" }, index: 0 });
    expect(refusedLetter.error).toMatch(/t must be epoch ms/);
    expect(decode(refusedLetter.data)).toEqual([{ t: "noon", pm: 10 }]);
  });
});
