// Deliveries checked against the subscription lists the twins publish (subscription-map.ts) with a real
// node and nats-server: a subscribed device's deliveries never ask its twin; unsubscribing and deleting
// the device (erasing its twin) publish the new list, and deliveries already queued are dropped;
// deliveries the list cannot vouch for — a subscription newer than the list seen, an out-of-order
// list, a device without one — are decided by the twin's answer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subscriptionsSubject, TWIN_TYPE, type SubscriptionsMessage } from "../../actors/device-twin/behavior.ts";
import type { Alert } from "../../actors/device-twin/domain/mod.ts";
import { defineIntegration, type Delivery } from "../../gateways/integrations/mod.ts";
import type { TwinAccess } from "../../gateways/integrations/subscription-lookup.ts";
import { SubscriptionMap } from "../../gateways/integrations/subscription-map.ts";
import { startIntegrationTestbed, type IntegrationTestbed } from "../../gateways/integrations/testing.ts";
import { encode, msgpackHeaders } from "../../runtime/mod.ts";
import { jetstream } from "@nats-io/jetstream";
import { waitFor } from "../harness/mod.ts";

describe("subscription lists", () => {
  let bed: IntegrationTestbed;
  let map: SubscriptionMap;
  let asked = 0;
  const delivered: Delivery[] = [];
  let n = 0;

  beforeAll(async () => {
    bed = await startIntegrationTestbed();
    // the twin, with its questions counted
    const twins: TwinAccess = {
      get: (...args) => {
        asked++;
        return bed.client.get(...args);
      },
      command: (...args) => bed.client.command(...args),
    };
    map = await SubscriptionMap.start({ nc: bed.nc, prefix: bed.prefix, twins });
    const recorder = defineIntegration({
      provider: "rec",
      async deliver(d) {
        delivered.push(d);
      },
    });
    await bed.run(recorder, { twins, subscriptions: map });
  }, 60_000);
  afterAll(async () => {
    await map?.close();
    await bed?.close();
  });

  const alert = (deviceId: string): Alert => {
    const at = Date.now() + n++;
    return { id: `${deviceId}:offline:${at}`, deviceId, channel: "device", kind: "offline", at };
  };
  const publish = (deviceId: string, a = alert(deviceId)) => bed.publish("rec", deviceId, `${a.id}:s1`, { subscriptionId: "s1", target: "as published", alert: a });
  const deliveredTo = (deviceId: string) => delivered.filter((d) => d.deviceId === deviceId);
  const dropped = async () => (await bed.metrics.dropped.get()).values.find((v) => v.labels.reason === "unsubscribed" && v.labels.provider === "rec")?.value ?? 0;

  it("delivers a subscribed device's alerts with its current target, asking its twin nothing", async () => {
    await bed.subscribe("map-1", { id: "s1", provider: "rec", match: {}, target: "room-1" });
    await waitFor(() => map.known("map-1", "s1") !== undefined, { message: "the list arrived" });
    const before = asked;
    for (let i = 0; i < 20; i++) await publish("map-1");
    await waitFor(() => deliveredTo("map-1").length === 20, { message: "20 deliveries" });
    expect(deliveredTo("map-1").every((d) => d.subscription.target === "room-1")).toBe(true);
    expect(asked).toBe(before);
    // a changed target is in the next list, and used
    await bed.subscribe("map-1", { id: "s1", provider: "rec", match: {}, target: "room-2" });
    await waitFor(() => map.known("map-1", "s1")?.target === "room-2", { message: "the new list" });
    await publish("map-1");
    await waitFor(() => deliveredTo("map-1").length === 21, { message: "delivery to the new target" });
    expect(deliveredTo("map-1").at(-1)!.subscription.target).toBe("room-2");
  }, 30_000);

  it("unsubscribing and deleting the device drop the deliveries queued for them", async () => {
    for (const d of ["map-2", "map-3"]) await bed.subscribe(d, { id: "s1", provider: "rec", match: {}, target: d });
    await waitFor(() => map.known("map-2", "s1") !== undefined && map.known("map-3", "s1") !== undefined, { message: "the lists arrived" });
    await bed.unsubscribe("map-2", "s1");
    await bed.client.erase(TWIN_TYPE, "map-3");
    await waitFor(() => map.known("map-2", "s1") === undefined && map.known("map-3", "s1") === undefined, { message: "the new lists arrived" });
    const before = await dropped();
    for (let i = 0; i < 5; i++) {
      await publish("map-2");
      await publish("map-3");
    }
    await waitFor(async () => (await dropped()) === before + 10, { timeoutMs: 10_000, message: "10 dropped" });
    expect(deliveredTo("map-2")).toHaveLength(0);
    expect(deliveredTo("map-3")).toHaveLength(0);
  }, 30_000);

  it("asks the twin for what the list cannot vouch for: a subscription newer than it, an out-of-order list", async () => {
    // a delivery published before its subscription's list is read: the twin has it, so it is delivered
    await bed.subscribe("map-4", { id: "s1", provider: "rec", match: {}, target: "room-4" });
    await bed.subscribe("map-4", { id: "s2", provider: "rec", match: {}, target: "room-4b" });
    const a = alert("map-4");
    await bed.publish("rec", "map-4", `${a.id}:s2`, { subscriptionId: "s2", target: "x", alert: a });
    await waitFor(() => deliveredTo("map-4").length === 1, { message: "delivered" });
    // a list older than the newest seen (a publish sent again out of order): the twin is asked instead
    await waitFor(() => map.known("map-4", "s2") !== undefined, { message: "the list arrived" });
    const stale: SubscriptionsMessage = { deviceId: "map-4", revision: [1, 0], subscriptions: [] };
    await jetstream(bed.nc).publish(subscriptionsSubject(bed.prefix, "map-4"), encode(stale), { headers: msgpackHeaders() });
    await waitFor(() => map.known("map-4", "s1") === undefined, { message: "the entry no longer trusted" });
    const before = asked;
    await publish("map-4");
    await waitFor(() => deliveredTo("map-4").length === 2, { message: "delivered on the twin's word" });
    expect(asked).toBe(before + 1);
    // the twin's answer is kept until a newer list: the next delivery asks nothing
    await publish("map-4");
    await waitFor(() => deliveredTo("map-4").length === 3, { message: "delivered from the kept answer" });
    expect(asked).toBe(before + 1);
    await bed.unsubscribe("map-4", "s1");
    await waitFor(() => map.known("map-4", "s2") !== undefined && map.known("map-4", "s1") === undefined, { message: "the newer list replaced the answers" });
  }, 30_000);

  it("a second map started now reads every list stored so far", async () => {
    await using second = await SubscriptionMap.start({ nc: bed.nc, prefix: bed.prefix, twins: bed.client });
    expect(second.known("map-1", "s1")?.target).toBe("room-2");
    expect(second.known("map-2", "s1")).toBeUndefined();
    expect(second.known("map-3", "s1")).toBeUndefined();
    expect(second.known("map-4", "s2")?.target).toBe("room-4b");
  }, 30_000);
});
