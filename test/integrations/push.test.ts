// The push integration writes the outbox through the archive's database layer, on both backends
// (embedded PGlite; Postgres when DATABASE_URL is set): one row per alert and subscription with the
// title and body a user reads, repeats inserting nothing, reports too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Alert } from "../../actors/device-twin/domain/mod.ts";
import type { DatabaseOptions } from "../../gateways/archive/db/mod.ts";
import { pushIntegration, type PushRow } from "../../gateways/integrations/push/push.ts";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { waitFor } from "../harness/mod.ts";

const backends: Array<[string, () => DatabaseOptions]> = [["pglite", () => ({ dataDir: mkdtempSync(join(tmpdir(), "airtwin-push-")) })]];
if (process.env.DATABASE_URL) backends.push(["postgres", () => ({ databaseUrl: process.env.DATABASE_URL, schema: `push_test_${process.pid}_${Date.now()}` })]);

describe.each(backends)("push outbox on %s", (_kind, options) => {
  let bed: IntegrationTestbed;
  let push: ReturnType<typeof pushIntegration>;
  const dbOptions = options();
  beforeAll(async () => {
    bed = await startIntegrationTestbed();
    push = pushIntegration({ database: dbOptions, backoff: { initialMs: 200 } });
    await bed.run(push);
  }, 60_000);
  afterAll(async () => {
    if (dbOptions.schema !== undefined) await push?.database().query(`drop schema ${dbOptions.schema} cascade`);
    await bed?.close();
    if (dbOptions.dataDir) rmSync(dbOptions.dataDir, { recursive: true, force: true });
  });
  const rows = async (deviceId: string) =>
    (await push.database().query<PushRow>("select * from push_outbox where device_id = $1 order by id", [deviceId])).rows;

  it("one row per alert and subscription, with what the user reads; repeats insert nothing", async () => {
    await bed.subscribe("nursery", { id: "phone", provider: "push", match: { kinds: ["event.start", "event.end"] }, target: "apns:abc123" });
    await bed.subscribe("nursery", { id: "tablet", provider: "push", match: { kinds: ["event.start"] }, target: "fcm:xyz" });
    await bed.command("nursery", { type: "putRule", rule: { id: "co2-now", channel: "co2", direction: "above", enter: 1200, exit: 900, minDurationMs: 0, clearDurationMs: 0 } });
    const t = Date.UTC(2026, 1, 4, 21);
    await bed.sendReadings("nursery", [{ t, co2: 800 }, { t: t + 300_000, co2: 1350 }, { t: t + 600_000, co2: 850 }]);
    await waitFor(async () => (await rows("nursery")).length === 3, { timeoutMs: 15_000, message: "3 rows" });
    const got = await rows("nursery");
    expect(got.map((r) => `${r.subscription_id} ${r.kind} ${r.target}`).sort()).toEqual(["phone event.end apns:abc123", "phone event.start apns:abc123", "tablet event.start fcm:xyz"]);
    const start = got.find((r) => r.kind === "event.start")!;
    expect(start.title).toBe("CO₂ is high in nursery");
    expect(start.body).toContain("CO₂ reached 1350 ppm, at or over the 1200 ppm of rule co2-now");
    expect(start.sent_at).toBeNull();
    expect((start.payload as Alert).id).toBe(start.source_id);

    // the same alert again (a repeat after a crash, under another message id): no new row
    const alert = start.payload as Alert;
    await bed.publish("push", "nursery", `${alert.id}:phone:again`, { subscriptionId: "phone", target: "", alert });
    const delivered = async () => (await bed.metrics.delivered.get()).values.find((v) => v.labels.provider === "push")?.value ?? 0;
    const before = await delivered();
    await waitFor(async () => (await delivered()) > before || before >= 4, { message: "repeat handled" });
    expect(await rows("nursery")).toHaveLength(3);
  }, 30_000);

  it("a daily report becomes a notification too", async () => {
    await bed.subscribe("study", { id: "phone", provider: "push", match: { kinds: ["report.day"] }, target: "apns:def" });
    const day = Date.UTC(2026, 1, 5);
    await bed.sendReadings("study", [{ t: day + 3_600_000, pm: 9, co2: 600 }, { t: day + 7_200_000, pm: 11, co2: 640 }, { t: day + 86_400_000 + 60_000, pm: 8 }]);
    await waitFor(async () => (await rows("study")).length === 1, { timeoutMs: 15_000, message: "report row" });
    const [r] = await rows("study");
    expect(r).toMatchObject({ kind: "report.day", title: "Your air on Thu 5 Feb 2026 was good — study", source_id: `study:report.day:${day}` });
    expect(r!.body).toBe("The air was good: fine particles averaged 10.0 µg/m³, and CO₂ averaged 620 ppm.");
  }, 30_000);
});
