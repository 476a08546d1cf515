// One chaos run from its parameters: start the system, register the fleet (some devices with a user rule
// and a webhook subscription), let the fleet post while the seeded faults happen one after another,
// stop the load, then run every end check and print the summary. Returns the problems found.
import { connect } from "@nats-io/transport-node";
import { RuntimeClient } from "../../runtime/mod.ts";
import { rng } from "../harness/rng.ts";
import { Partner } from "../integrations/partner.ts";
import { checkAlerts, checkArchive, checkTwins, checkWebhook, expectedEventAlerts, WEBHOOK_KINDS, WEBHOOK_RULE, WEBHOOK_RULE_ID } from "./checks.ts";
import { inject, planFaults, type DoneFault } from "./faults.ts";
import { ChaosFleet } from "./fleet.ts";
import { FAULT_KINDS, type ChaosParams } from "./params.ts";
import { ChaosSystem, PREFIX } from "./system.ts";

export interface ChaosOutcome {
  summary: string;
  problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // the quiet gap between faults, under load

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The owner's API key puts the rule and the subscription on each webhook device (through the input stream, before any reading). */
async function subscribeDevices(gatewayUrl: string, apiKey: string, devices: readonly string[], partnerUrl: string): Promise<void> {
  for (const deviceId of devices) {
    const subscription = { id: "chaos-hook", provider: "webhook", match: { kinds: WEBHOOK_KINDS, ruleIds: [WEBHOOK_RULE_ID] }, target: `${partnerUrl}/${deviceId}` };
    for (const command of [WEBHOOK_RULE, { type: "subscribe", subscription }]) {
      const r = await fetch(`${gatewayUrl}/v1/devices/${deviceId}/commands`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify(command),
      });
      if (r.status !== 200) throw new Error(`${deviceId} ${command.type}: ${r.status} ${await r.text()}`);
    }
  }
}

export async function runChaos(params: ChaosParams): Promise<ChaosOutcome> {
  const log = (line: string) => console.log(`[chaos seed ${params.seed}] ${line}`);
  const started = Date.now();
  const plan = planFaults(params);
  log(`${params.profile} run: ${params.devices} devices, ${plan.length} faults planned (${plan.map((f) => f.kind).join(", ")})`);
  const partner = await Partner.start();
  const system = await ChaosSystem.start(params);
  log(`system up in ${secs(Date.now() - started)}: NATS ${system.nats.urls.join(",")}, gateways ${system.gatewayUrls.join(" ")}, archive on ${system.proxy ? "Postgres (through a proxy)" : "PGlite"}`);
  const nc = await connect({ servers: system.nats.urls, noAsyncTraces: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: "chaos checks" });
  const client = new RuntimeClient(nc, { prefix: PREFIX, shards: params.shards, ackTimeoutMs: 30_000 });
  const problems: string[] = [];
  const done: DoneFault[] = [];
  // a failed run keeps every process's log (its tails are printed, the whole logs say what led there)
  let keepLogs = false;
  let stuck = 0;
  try {
    const fleet = new ChaosFleet(params);
    const apiKey = await fleet.register(system.gatewayUrls[0]!);
    const r = rng(params.seed ^ 0xbeef);
    const webhookDevices = [...fleet.ids].sort(() => r() - 0.5).slice(0, params.webhookDevices);
    await subscribeDevices(system.gatewayUrls[1]!, apiKey, webhookDevices, partner.url);

    const stop = new AbortController();
    const loadStarted = Date.now();
    const load = fleet.run(system.gatewayUrls, stop.signal);
    for (const [i, f] of plan.entries()) {
      await sleep(f.gapMs);
      try {
        const d = await inject(system, f);
        done.push(d);
        log(`fault ${i + 1}/${plan.length} ${d.kind}: ${d.skipped ? `skipped (${d.skipped})` : `${d.what}; served again after ${secs(d.recoveredMs)}`} — ${fleet.acceptedReadings} readings accepted so far`);
      } catch (err) {
        // the system did not recover by itself: that is a finding; restart every airtwin process so the
        // run goes on to its end checks (did the stuck time lose or double anything?)
        const problem = `fault ${i + 1} ${f.kind} (${new Date().toISOString()}): the system did not recover by itself: ${(err as Error).message}`;
        problems.push(problem);
        // every node writes what its ownership is doing (cli/node.ts) into the tails below
        await system.diagnose();
        log(`${problem}\n${system.logTails(12)}\nkilling and restarting every airtwin process to go on`);
        done.push({ kind: f.kind, what: "not recovered by itself", recoveredMs: 0 });
        stuck++;
        for (let attempt = 1; ; attempt++) {
          await Promise.all([...system.roles.keys()].map((role) => system.signal(role, "SIGKILL")));
          await system.restartMissing();
          const recovered = await system.settled().then(() => true, (e: Error) => (attempt < 3 ? (log(`not served after restarting everything (${attempt}): ${e.message}`), false) : Promise.reject(e)));
          if (recovered) break;
        }
      }
    }
    await sleep(params.gapMs[1]);
    stop.abort();
    const stats = await load;
    const loadMs = Date.now() - loadStarted;
    const resentAtEnd = await fleet.settleUnanswered();
    log(`load stopped after ${secs(loadMs)}; ${resentAtEnd} devices sent their last unanswered readings again; checking`);
    problems.unshift(...fleet.problems);

    const twins = await checkTwins(client, fleet);
    problems.push(...twins.problems);
    const expected = expectedEventAlerts(fleet, new Set(webhookDevices));
    const alerts = await checkAlerts(nc, expected);
    problems.push(...alerts.problems);
    const archive = await checkArchive(nc, fleet);
    problems.push(...archive.problems);
    const webhook = await checkWebhook(partner.requests, expected, new Set(webhookDevices));
    problems.push(...webhook.problems);

    const byKind = FAULT_KINDS.map((k) => {
      const all = done.filter((d) => d.kind === k);
      const skipped = all.filter((d) => d.skipped).length;
      return `${k} ${all.length - skipped}${skipped ? ` (+${skipped} skipped: ${all.find((d) => d.skipped)!.skipped})` : ""}`;
    });
    const injected = done.filter((d) => !d.skipped).length;
    const retries = Object.entries(fleet.retriedByCode).map(([c, n]) => `${c} ${n}`).join(", ") || "none";
    const summary = [
      `chaos seed ${params.seed} (${params.profile}): ${params.devices} devices (${webhookDevices.length} with a webhook), ${params.shards} shards, 3 NATS servers (replicas 3), 3 nodes, 2 gateways, archive (${system.proxy ? "Postgres" : "PGlite"}), integrations; ${injected} faults in ${secs(loadMs)} of load, ${secs(Date.now() - started)} in all`,
      `  readings sent ${stats.sent} / accepted ${fleet.acceptedReadings} (${fleet.ref.totals().readings} distinct and in order) / applied ${twins.applied} / archived ${archive.archived} of ${archive.expected} / webhook delivered ${webhook.delivered} of ${webhook.expected} alerts (${webhook.attempts} requests)`,
      `  event alerts: ${alerts.expected} implied by the accepted readings, ${alerts.onStream} ids on the stream, ${alerts.repeats} repeats (same id)`,
      `  faults by kind: ${byKind.join(", ")}`,
      `  longest window a device got 503: ${secs(fleet.longest503.ms)} (${fleet.longest503.deviceId}: ${fleet.longest503.codes.join(", ") || "-"}); refused in any way (503, connection refused or reset): ${secs(fleet.longestRefusal.ms)} (${fleet.longestRefusal.deviceId}: ${fleet.longestRefusal.codes.join(", ") || "-"})`,
      `  requests ${fleet.requests}, retried: ${retries}; processes that died on their own: ${system.unexpectedExits.length}; faults the system did not recover from by itself within 180 s: ${stuck}`,
      ...system.unexpectedExits.map((e) => `    ${e.split("\n")[0]}`),
      `  problems: ${problems.length === 0 ? "none" : problems.length}`,
      `  reproduce: npm run test:chaos -- --seed ${params.seed}${params.profile === "short" ? " --short" : ""}`,
    ].join("\n");
    if (problems.length > 0) {
      keepLogs = true;
      console.error(`chaos problems:\n${problems.join("\n")}\n\nlogs:\n${system.logTails(15, true)}`);
    }
    return { summary, problems };
  } catch (err) {
    keepLogs = true;
    console.error(`chaos run failed after faults: ${done.map((d) => d.kind).join(", ")}\n${system.logTails(30, true)}`);
    throw new Error(`chaos seed ${params.seed}: ${(err as Error).message} (reproduce: npm run test:chaos -- --seed ${params.seed})`, { cause: err });
  } finally {
    await client.close().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await system.stop({ keepLogs });
    await partner.close();
  }
}
