// `airtwin integrations [--providers webhook,email,…]`: delivers the twins' integration messages to
// partners (gateways/integrations): one durable consumer per provider, shared by every process running
// it, so scaling one provider is starting more of these with `--providers <it>`. SIGTERM/SIGINT: stop
// taking messages, let in-flight deliveries finish (10 s), put the rest back, exit.
import { createServer } from "node:http";
import { builtinIntegrations, loadIntegrationsConfig } from "../gateways/integrations/config.ts";
import { IntegrationError } from "../gateways/integrations/errors.ts";
import { startIntegrations } from "../gateways/integrations/service.ts";
import { closeNats, connectNats, ensureClusterForClients, maskUrl, names } from "../runtime/mod.ts";

const usage = `usage: airtwin integrations [--providers LIST]

Delivers alerts and reports to partners: webhook, thermostat, email, push (comma-separated LIST;
default AIRTWIN_INTEGRATIONS, else every built-in whose settings are present). Settings:
  AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1   allow webhook targets on private addresses (airtwin dev sets it)
  AIRTWIN_SMTP_URL, AIRTWIN_SMTP_FROM                 email
  AIRTWIN_THERMOSTAT_URL, AIRTWIN_THERMOSTAT_CLIENT_ID, AIRTWIN_THERMOSTAT_CLIENT_SECRET,
  AIRTWIN_THERMOSTAT_CALLS_PER_S                      thermostat
  DATABASE_URL (else embedded PGlite under $AIRTWIN_DATA_DIR/pglite/integrations)   push outbox
  AIRTWIN_ARCHIVE_SCHEMA                              its Postgres schema (the archive's)
  AIRTWIN_METRICS_PORT                                Prometheus /metrics
See docs/integrations.md.
`;

const log = (level: string, msg: string, fields?: Record<string, unknown>) =>
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);

/** `--providers a,b` / `--providers=a,b`. */
export function parseIntegrationsArgs(args: readonly string[]): { providers: string | undefined; help: boolean } {
  let providers: string | undefined;
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--help" || a === "-h") help = true;
    else if (a === "--providers") providers = args[++i] ?? "";
    else if (a.startsWith("--providers=")) providers = a.slice("--providers=".length);
    else throw new IntegrationError("INTEGRATION_CONFIG_INVALID", `unknown argument ${a}\n\n${usage}`);
  }
  return { providers, help };
}

export async function runIntegrations(args: readonly string[] = []): Promise<void> {
  const opts = parseIntegrationsArgs(args);
  if (opts.help) {
    process.stdout.write(usage);
    return;
  }
  const config = loadIntegrationsConfig(process.env, opts.providers);
  const rt = config.runtime;
  const nc = await connectNats({ servers: rt.natsServers, name: `airtwin integrations (${config.providers.join(",")})` });
  let service;
  try {
    await ensureClusterForClients(nc, names(rt.prefix), { shards: rt.shards, streams: rt.streams, replicas: rt.replicas });
    service = await startIntegrations({ nc, prefix: rt.prefix, shards: rt.shards, definitions: builtinIntegrations(config), replicas: rt.replicas, log });
  } catch (err) {
    await closeNats(nc);
    throw err;
  }
  let metricsUrl: string | undefined;
  const server = rt.metricsPort === undefined
    ? undefined
    : createServer((req, res) => {
        if (req.url !== "/metrics") return void res.writeHead(404).end();
        void service.metrics.registry.metrics().then((body) => res.writeHead(200, { "content-type": service.metrics.registry.contentType }).end(body));
      });
  if (server !== undefined) {
    await new Promise<void>((ok) => server.listen(rt.metricsPort, rt.metricsHost, ok));
    const addr = server.address();
    metricsUrl = `http://${rt.metricsHost}:${typeof addr === "object" && addr !== null ? addr.port : rt.metricsPort}/metrics`;
  }
  process.stdout.write(`${JSON.stringify({ msg: "integrations ready", providers: config.providers, nats: maskUrl(rt.natsUrl), ...(metricsUrl ? { metrics: metricsUrl } : {}) })}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", "integrations stopping", { signal });
    void (async () => {
      await service.close();
      server?.close();
      await closeNats(nc);
    })().then(
      () => process.exit(0),
      (err: unknown) => {
        log("error", "shutdown failed", { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}
