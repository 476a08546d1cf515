// The dashboard in a real headless Chromium (Debian's, through playwright-core) against a real
// `airtwin dev --simulate` cluster of two nodes: sign in with the admin token, see the nodes and who
// owns each shard, watch alerts arrive live (from a device of ours and from a simulated one), open a
// device (charts drawn, a reading arriving live), add and delete a rule and a subscription from the
// page, move a shard. The key never appears in a URL. Screenshots go to a temp folder, or to docs/img
// with AIRTWIN_UPDATE_SCREENSHOTS=1.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TwinView } from "../../actors/device-twin/domain/mod.ts";
import { launchChromium, type TestBrowser } from "../harness/chromium.ts";
import { getFreePort } from "../harness/free-port.ts";
import { waitFor } from "../harness/wait-for.ts";
import { AirtwinProcess, readingsFor } from "./processes.ts";

const SHOTS = process.env.AIRTWIN_UPDATE_SCREENSHOTS === "1" ? resolve(import.meta.dirname, "../../docs/img") : mkdtempSync(join(tmpdir(), "airtwin-dashboard-shots-"));
const dataDir = mkdtempSync(join(tmpdir(), "airtwin-dashboard-e2e-"));
let dev: AirtwinProcess;
let browser: TestBrowser;
let page: Page;
let gateway: string;
let token: string;
const requested: string[] = [];
const pageErrors: string[] = [];
const devices: Record<string, string> = {};
let lastT = 0;
let simulated: string[] = [];
let aliceKey = "";

const api = async <T>(method: string, path: string, body?: unknown, key = token): Promise<{ status: number; body: T }> => {
  const r = await fetch(`${gateway}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  return { status: r.status, body: (text === "" ? null : JSON.parse(text)) as T };
};

const post = (deviceId: string, readings: unknown[]) => api("POST", `/v1/devices/${deviceId}/readings`, { readings }, devices[deviceId]);

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  const port = await getFreePort();
  dev = new AirtwinProcess("dev", ["dev", "--nodes", "2", "--simulate", "4"], { AIRTWIN_DATA_DIR: dataDir, AIRTWIN_HTTP_PORT: String(port), NATS_URL: undefined, AIRTWIN_ADMIN_TOKEN: undefined });
  gateway = await waitFor(
    () => {
      if (!dev.running) throw new Error(`airtwin dev exited:\n${dev.output()}`);
      return dev.output().includes("Ctrl-C stops everything") ? /^GATEWAY_URL=(\S+)$/m.exec(dev.output())?.[1] : undefined;
    },
    { timeoutMs: 90_000, message: "airtwin dev is up" },
  );
  token = /^AIRTWIN_ADMIN_TOKEN=(\S+)$/m.exec(dev.output())![1]!;
  // a small fleet with a day of readings each
  const alice = await api<{ apiKey: string }>("POST", "/v1/users", { userId: "alice" });
  expect(alice.status).toBe(201);
  aliceKey = alice.body.apiKey;
  const start = Date.now() - 24 * 3_600_000;
  for (const [i, id] of ["kitchen", "bedroom", "office"].entries()) {
    const d = await api<{ token: string }>("POST", "/v1/devices", { deviceId: id, ownerId: "alice" });
    expect(d.status).toBe(201);
    devices[id] = d.body.token;
    const readings = readingsFor(i + 1, start, 144, 600_000);
    lastT = Math.max(lastT, readings[readings.length - 1]!.t);
    expect((await post(id, readings)).status).toBe(202);
  }
  const rule = { id: "e2e-spike", channel: "co2", direction: "above", enter: 2000, exit: 1000, minDurationMs: 0, clearDurationMs: 0 };
  expect((await api("POST", "/v1/devices/kitchen/commands", { type: "putRule", rule })).status).toBe(200);
  await waitFor(async () => (await api<TwinView>("GET", "/v1/devices/office")).body.readings === 144, { timeoutMs: 30_000, message: "the readings applied" });
  // airtwin dev runs the archive (PGlite): the device page's 24 hours and history come from it once it caught up
  await waitFor(
    async () => {
      const r = await api<{ lag?: number; rows?: { readings?: number } }>("GET", "/v1/ops/archive");
      return r.status === 200 && r.body.lag === 0 && (r.body.rows?.readings ?? 0) >= 3 * 144;
    },
    { timeoutMs: 120_000, intervalMs: 500, message: "the archive caught up" },
  );

  const listed = await api<{ devices: Array<{ deviceId: string; ownerId: string }> }>("GET", "/v1/devices");
  simulated = listed.body.devices.filter((d) => d.ownerId === "demo").map((d) => d.deviceId);
  expect(simulated).toHaveLength(4);

  browser = await launchChromium();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.on("request", (r) => requested.push(r.url()));
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("dialog", (d) => void d.accept());
}, 180_000);

afterAll(async () => {
  await browser?.close();
  if (dev?.running) await dev.stop(60_000);
  rmSync(dataDir, { recursive: true, force: true });
  if (process.env.AIRTWIN_UPDATE_SCREENSHOTS !== "1") process.stdout.write(`dashboard screenshots: ${SHOTS}\n`);
});

/** The shards' owners as the page shows them. */
const shownOwners = () => page.$$eval("#shard-grid .shard", (tiles) => tiles.map((t) => t.getAttribute("data-owner") ?? ""));

describe("the dashboard in Chromium", () => {
  it("signs in with the admin token and shows the nodes and the shards each owns", { timeout: 60_000 }, async () => {
    await page.goto(`${gateway}/`);
    await page.fill("#api-key", token);
    await page.click("form.login button[type=submit]");
    await page.waitForSelector("#whoami");
    expect(await page.textContent("#whoami")).toBe("admin");
    await waitFor(async () => (await page.$$("#nodes tbody tr")).length === 2, { timeoutMs: 20_000, message: "two nodes listed" });
    expect(await page.$$eval("#nodes tbody tr", (rows) => rows.map((r) => r.getAttribute("data-node")))).toEqual(["dev-node-1", "dev-node-2"]);
    const owners = await waitFor(async () => {
      const o = await shownOwners();
      return o.length === 64 && o.every((x) => x !== "") ? o : undefined;
    }, { timeoutMs: 20_000, message: "64 shards with owners" });
    expect(new Set(owners)).toEqual(new Set(["dev-node-1", "dev-node-2"]));
    expect(await page.$$eval("#device-rows tr", (rows) => rows.map((r) => r.getAttribute("data-device")))).toEqual(expect.arrayContaining(["bedroom", "kitchen", "office", ...simulated]));
  });

  it("shows an alert the moment a device crosses a threshold", { timeout: 60_000 }, async () => {
    await waitFor(async () => (await page.textContent("#feed-state")) === "live", { message: "the alert feed is open" });
    lastT += 60_000;
    expect((await post("kitchen", [{ t: lastT, co2: 2600 }])).status).toBe(202);
    const item = page.locator('#alert-feed li:has(a.dev[href="#/devices/kitchen"]):has-text("e2e-spike")').first();
    await item.waitFor({ timeout: 20_000 });
    expect(await item.textContent()).toMatch(/event\.start.*crossed 2,000 \(e2e-spike\)/);

    // a simulated device crosses a threshold by itself: every CO2 reading is over 10 ppm
    const device = simulated[0]!;
    const rule = { id: "e2e-sim", channel: "co2", direction: "above", enter: 10, exit: 5, minDurationMs: 0, clearDurationMs: 0 };
    expect((await api("POST", `/v1/devices/${device}/commands`, { type: "putRule", rule })).status).toBe(200);
    const fromSimulator = page.locator(`#alert-feed li:has(a.dev[href="#/devices/${device}"]):has-text("e2e-sim")`).first();
    await fromSimulator.waitFor({ timeout: 30_000 });
    await waitFor(async () => (await page.textContent("#summary")) !== null && !/readings\/s\s*0\b/.test((await page.textContent("#summary"))!), {
      timeoutMs: 20_000,
      message: "the simulated fleet's readings/s on the page",
    });    await page.screenshot({ path: join(SHOTS, "dashboard-fleet.png"), fullPage: true });
  });

  it("moves a shard from the page", { timeout: 60_000 }, async () => {
    const before = (await shownOwners())[5]!;
    const target = before === "dev-node-1" ? "dev-node-2" : "dev-node-1";
    await page.click('#shard-grid .shard[data-shard="5"]');
    await page.selectOption("#move-target", target);
    await page.click("#move-button");
    await waitFor(async () => (await shownOwners())[5] === target, { timeoutMs: 30_000, message: `shard 5 shown on ${target}` });
    const cluster = await api<{ shards: Array<{ owner: string; pinned: boolean }> }>("GET", "/v1/ops/cluster");
    expect(cluster.body.shards[5]).toMatchObject({ owner: target, pinned: true });
  });

  it("opens a device: values, 24-hour charts, a reading arriving live", { timeout: 60_000 }, async () => {
    await page.click('#device-rows a[href="#/devices/kitchen"]');
    await page.waitForSelector("#rule-rows");
    await waitFor(async () => (await page.$$("#charts .chart canvas")).length === 6, { timeoutMs: 20_000, message: "a chart per channel" });
    expect(await page.textContent("#chart-source")).toMatch(/^Every reading, from the archive/);
    await waitFor(async () => (await page.textContent("#live-state")) === "live", { message: "the device stream is open" });
    lastT += 60_000;
    expect((await post("kitchen", [{ t: lastT, co2: 777 }])).status).toBe(202);
    await waitFor(async () => (await page.textContent('#current [data-channel="co2"] .value')) === "777", { timeoutMs: 20_000, message: "the live reading shown" });
  });

  it("adds and deletes a rule from the page", { timeout: 60_000 }, async () => {
    await page.fill('#rule-form [name="id"]', "e2e-pm");
    await page.selectOption('#rule-form [name="channel"]', "pm");
    await page.fill('#rule-form [name="enter"]', "55");
    await page.fill('#rule-form [name="exit"]', "30");
    await page.fill('#rule-form [name="minMinutes"]', "5");
    await page.click('#rule-form button[type="submit"]');
    await page.waitForSelector('tr[data-rule="e2e-pm"]', { timeout: 20_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}; the page said: ${await page.textContent("#toast")}`);
    });
    const rules = async () => (await api<TwinView>("GET", "/v1/devices/kitchen")).body.rules;
    expect((await rules()).find((r) => r.id === "e2e-pm")).toEqual({ id: "e2e-pm", channel: "pm", direction: "above", enter: 55, exit: 30, minDurationMs: 300_000, clearDurationMs: 0 });
    await page.click('button[data-delete-rule="e2e-pm"]');
    await page.waitForSelector('tr[data-rule="e2e-pm"]', { state: "detached", timeout: 20_000 });
    expect((await rules()).some((r) => r.id === "e2e-pm")).toBe(false);
  });

  it("adds and deletes a subscription from the page", { timeout: 60_000 }, async () => {
    await page.fill('#subscription-form [name="id"]', "e2e-hook");
    await page.fill('#subscription-form [name="target"]', "https://hooks.example.com/airtwin");
    await page.fill('#subscription-form [name="kinds"]', "event.start, event.end");
    await page.click('#subscription-form button[type="submit"]');
    await page.waitForSelector('tr[data-subscription="e2e-hook"]', { timeout: 20_000 });
    const subscriptions = async () => (await api<TwinView>("GET", "/v1/devices/kitchen")).body.subscriptions;
    expect(await subscriptions()).toEqual([{ id: "e2e-hook", provider: "webhook", match: { kinds: ["event.start", "event.end"] }, target: "https://hooks.example.com/airtwin" }]);
    await page.click('button[data-unsubscribe="e2e-hook"]');
    await page.waitForSelector('tr[data-subscription="e2e-hook"]', { state: "detached", timeout: 20_000 });
    expect(await subscriptions()).toEqual([]);
  });

  it("draws a simulated device's charts and history", { timeout: 60_000 }, async () => {
    await page.goto(`${gateway}/#/devices/${simulated[1]}`);
    await waitFor(async () => (await page.$$("#charts .chart canvas")).length >= 4, { timeoutMs: 20_000, message: "the simulated device's charts" });
    await page.click("#history-month");
    await page.waitForSelector("#history-out .chart canvas", { timeout: 20_000 });
    // the screenshot shows our device with a day of readings (the simulated ones have minutes)
    await page.goto(`${gateway}/#/devices/kitchen`);
    await waitFor(async () => (await page.$$("#charts .chart canvas")).length === 6, { timeoutMs: 20_000, message: "kitchen's charts" });
    await page.click("#history-week");
    await page.waitForSelector("#history-out .chart canvas", { timeout: 20_000 });
    expect(await page.$("#history-no-archive")).toBeNull();
    await waitFor(async () => (await page.$("#toast.show")) === null, { timeoutMs: 20_000, message: "the toast gone" });
    await page.screenshot({ path: join(SHOTS, "dashboard-device.png"), fullPage: true });
  });

  it("signs out, and a user's key shows only that user's devices and no cluster operations", { timeout: 60_000 }, async () => {
    await page.goto(`${gateway}/#/`);
    await page.click("#sign-out");
    await page.waitForSelector("form.login");
    await page.fill("#api-key", "not-a-key");
    await page.click("form.login button[type=submit]");
    await waitFor(async () => (await page.textContent("#login-error")) === "That key is not valid.", { message: "a wrong key refused" });
    await page.fill("#api-key", aliceKey);
    await page.click("form.login button[type=submit]");
    await page.waitForSelector("#whoami");
    expect(await page.textContent("#whoami")).toBe("user alice");
    await waitFor(async () => (await page.$$("#device-rows tr")).length === 3, { message: "alice's three devices" });
    expect(await page.$$eval("#device-rows tr", (rows) => rows.map((r) => r.getAttribute("data-device")))).toEqual(["bedroom", "kitchen", "office"]);
    expect(await page.$("#nodes")).toBeNull();
    expect(await page.$("#shard-grid")).toBeNull();
    await waitFor(async () => (await page.textContent("#feed-state")) === "live", { message: "alice's alert feed is open" });
  });

  it("never put the key in a URL and raised no page errors", () => {
    expect(requested.length).toBeGreaterThan(10);
    for (const key of [token, aliceKey]) expect(requested.filter((u) => u.includes(key) || u.includes(encodeURIComponent(key)))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
