// The whole system as operators run it — `airtwin node`, `gateway`, `archive` and `integrations`
// processes — on a nats-server that requires TLS (a CA and certificate made here with openssl) and a
// user and password, given as NATS_URL (`tls://user:password@host:port`) with the CA in
// NODE_EXTRA_CA_CERTS (docs/security.md). Then every secret is exercised — the admin token, a user's
// API key (header and `?token=`), device tokens (Bearer and Foobot's X-API-KEY-TOKEN, right and
// wrong), a webhook secret whose partner first fails — with the processes logging at debug, and none of
// them may appear in any process's output, any /metrics, or any error body.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { waitFor } from "../harness/wait-for.ts";
import { Partner } from "../integrations/partner.ts";
import { AirtwinProcess, FAST_ENV, runAirtwin, startGatewayProcess } from "../e2e/processes.ts";

const ADMIN = "sec-admin-token-5f1c0a9e7d3b";
const NATS_PASSWORD = "nats-pw-8d2e6b41c7";
const SECRET = `whsec_${Buffer.from("security-webhook-secret-0123456789").toString("base64")}`;

let dir: string;
let ns: TestNatsServer;
let env: Record<string, string>;
let url: string;
let partner: Partner;
const procs: AirtwinProcess[] = [];
/** Every body of an answer that was not a success, and every other output a client saw. */
const seen: string[] = [];

/** A CA, and a certificate for 127.0.0.1 signed by it. */
function makeCertificates(at: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(at, f);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2", "-subj", "/CN=airtwin test CA");
  ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=127.0.0.1");
  execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ${p("ext.cnf")}`]);
  ssl("x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial", "-out", p("server.pem"), "-days", "2", "-extfile", p("ext.cnf"));
  return { ca: p("ca.pem"), cert: p("server.pem"), key: p("server.key") };
}

async function started(name: string, args: string[], extra: Record<string, string>, ready: string): Promise<AirtwinProcess> {
  const p = new AirtwinProcess(name, args, { ...env, ...extra });
  procs.push(p);
  await waitFor(() => p.output().includes(`"${ready}"`) || (!p.running && Promise.reject(new Error(p.output()))), { timeoutMs: 90_000, message: ready });
  return p;
}

/** The URL of the /metrics a process announced in its ready line. */
function metricsOf(p: AirtwinProcess): string {
  const m = /"metrics":"(http:[^"]+)"/.exec(p.output());
  if (m === null) throw new Error(`${p.name} announced no metrics: ${p.output()}`);
  return m[1]!;
}

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  if (r.status >= 300) seen.push(text);
  return { status: r.status, text };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "airtwin-security-"));
  const tls = makeCertificates(dir);
  ns = await startNatsServer({
    extraConfig: `tls { cert_file: "${tls.cert}", key_file: "${tls.key}" }\nauthorization { user: "airtwin", password: "${NATS_PASSWORD}" }`,
  });
  partner = await Partner.start();
  const port = new URL(ns.url).port;
  env = {
    NATS_URL: `tls://airtwin:${NATS_PASSWORD}@127.0.0.1:${port}`,
    NODE_EXTRA_CA_CERTS: tls.ca,
    AIRTWIN_PREFIX: `sec${process.pid}`,
    AIRTWIN_SHARDS: "4",
    AIRTWIN_ADMIN_TOKEN: ADMIN,
    AIRTWIN_LOG_LEVEL: "debug",
    AIRTWIN_DATA_DIR: join(dir, "data"),
    ...FAST_ENV,
  };
  await started("node", ["node"], { AIRTWIN_NODE_ID: "sec-n1", AIRTWIN_METRICS_PORT: "0" }, "node ready");
  const gw = await startGatewayProcess(env);
  procs.push(gw.proc);
  url = gw.url;
  await started("archive", ["archive"], { AIRTWIN_METRICS_PORT: "0" }, "archive ready");
  await started("integrations", ["integrations", "--providers", "webhook"], { AIRTWIN_WEBHOOK_ALLOW_PRIVATE: "1", AIRTWIN_METRICS_PORT: "0" }, "integrations ready");
}, 240_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  await partner?.close();
  await ns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe("NATS that requires TLS and a password", () => {
  it("every process runs over it; without the password or without the CA nothing connects, and the password is never shown", { timeout: 60_000 }, async () => {
    const host = `127.0.0.1:${new URL(ns.url).port}`;
    const cases = [
      { NATS_URL: `tls://${host}` },
      { NATS_URL: `tls://airtwin:wrong-${NATS_PASSWORD}@${host}` },
      { NATS_URL: env.NATS_URL!, NODE_EXTRA_CA_CERTS: "" },
    ];
    for (const over of cases) {
      const r = await runAirtwin(["ops", "cluster"], { ...env, ...over });
      expect(r.code, r.out).not.toBe(0);
      expect(r.out).toMatch(/AIRTWIN_ERR_NATS_UNAVAILABLE/);
      expect(r.out).not.toContain(NATS_PASSWORD);
    }
    const ok = await runAirtwin(["ops", "cluster"], env);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain("sec-n1");
  });
});

describe("secrets", () => {
  it("no token, API key, webhook secret or NATS password in any output, metrics or error body", { timeout: 120_000 }, async () => {
    const user = await call("POST", "/v1/users", bearer(ADMIN), { userId: "alice" });
    expect(user.status, user.text).toBe(201);
    const apiKey = (JSON.parse(user.text) as { apiKey: string }).apiKey;
    const tokens: string[] = [];
    for (const deviceId of ["sec-1", "sec-2"]) {
      const d = await call("POST", "/v1/devices", bearer(ADMIN), { deviceId, ownerId: "alice" });
      expect(d.status, d.text).toBe(201);
      tokens.push((JSON.parse(d.text) as { token: string }).token);
    }
    const [token, other] = tokens as [string, string];
    const rule = { id: "co2-now", channel: "co2", direction: "above", enter: 1000, exit: 800, minDurationMs: 0, clearDurationMs: 0 };
    expect((await call("POST", "/v1/devices/sec-1/commands", bearer(apiKey), { type: "putRule", rule })).status).toBe(200);
    const subscription = { id: "hook", provider: "webhook", match: {}, target: `${partner.url}/hook`, secret: SECRET };
    expect((await call("POST", "/v1/devices/sec-1/commands", bearer(apiKey), { type: "subscribe", subscription })).status).toBe(200);
    // the partner fails the first attempt: the retry is logged
    partner.respond = (_req, i) => ({ status: i === 0 ? 500 : 204, body: i === 0 ? JSON.stringify({ echo: "server error" }) : undefined });

    // the secrets, used right and wrong
    const t = Date.now() - 120_000;
    expect((await call("POST", "/v1/devices/sec-1/readings", bearer(token), { readings: [{ t, co2: 600 }, { t: t + 60_000, co2: 1400 }] })).status).toBe(202);
    expect((await call("POST", "/v1/devices/sec-1/readings", { "x-api-key-token": token }, { sensors: ["time", "co2"], units: ["s", "ppm"], datapoints: [[Math.floor(t / 1000) + 90, 700]] })).status).toBe(202);
    for (const wrong of [other, `${token}x`, token.slice(0, -1), apiKey, ADMIN]) {
      expect((await call("POST", "/v1/devices/sec-1/readings", bearer(wrong), { readings: [{ t, co2: 1 }] })).status).toBe(401);
    }
    expect((await call("POST", "/v1/devices/sec-1/readings", { "x-api-key-token": `${token}x` }, { readings: [{ t, co2: 1 }] })).status).toBe(401);
    expect([401, 403]).toContain((await call("GET", "/v1/devices/sec-1", bearer(token))).status);
    expect((await call("GET", "/v1/devices/sec-1", bearer(`${apiKey}x`))).status).toBe(401);
    expect((await call("GET", "/v1/ops/cluster", bearer(apiKey))).status).toBe(403);
    expect((await call("GET", "/v1/ops/cluster", bearer(`${ADMIN}x`))).status).toBe(401);
    expect((await call("POST", "/v1/devices/sec-1/commands", bearer(apiKey), { type: "subscribe", subscription: { ...subscription, id: "bad", target: "ftp://x" } })).status).toBe(400);
    // an SSE stream opened with ?token= (the key in the URL an access log would print), right and wrong
    for (const [key, status] of [[apiKey, 200], [`${apiKey}x`, 401]] as const) {
      const controller = new AbortController();
      const r = await fetch(`${url}/v1/devices/sec-1/live?token=${encodeURIComponent(key)}`, { signal: controller.signal });
      expect(r.status).toBe(status);
      if (status !== 200) seen.push(await r.text());
      controller.abort();
    }
    await waitFor(() => partner.requests.length >= 2, { timeoutMs: 60_000, message: "the delivery, retried after the 500" });
    expect(partner.requests[1]!.headers["webhook-signature"]).toBeDefined();

    // everything anyone can read
    const metrics = await Promise.all([`${url}/metrics`, ...procs.filter((p) => p.name !== "gateway").map(metricsOf)].map(async (m) => (await fetch(m)).text()));
    const outputs = procs.map((p) => p.output());
    const everything = [...outputs, ...metrics, ...seen];
    // what the processes logged shows the work was logged at all (a silent process would pass trivially)
    expect(outputs.join("\n")).toMatch(/delivery failed; will retry/);
    const secrets: Record<string, string> = {
      "admin token": ADMIN,
      "API key": apiKey,
      "API key's secret part": apiKey.slice(apiKey.indexOf(".") + 1),
      "device token": token,
      "another device's token": other,
      "webhook secret": SECRET.slice("whsec_".length),
      "NATS password": NATS_PASSWORD,
    };
    for (const [what, secret] of Object.entries(secrets)) {
      for (const [i, text] of everything.entries()) {
        const at = text.indexOf(secret);
        expect(at, `${what} in ${i < outputs.length ? `the output of ${procs[i]!.name}` : i < outputs.length + metrics.length ? "metrics" : "an error body"}: …${text.slice(Math.max(0, at - 200), at + 50)}…`).toBe(-1);
      }
    }
  });
});
