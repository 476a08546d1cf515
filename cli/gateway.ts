// `airtwin gateway`: the HTTP API v1 and the NATS twin services. SIGTERM/SIGINT: stop accepting, finish
// the requests in flight (and their publishes), then exit.
import { loadGatewayConfig } from "../gateways/http/config.ts";
import { startGateway } from "../gateways/http/gateway.ts";
import { maskUrl } from "../runtime/mod.ts";

export async function runGateway(): Promise<void> {
  const config = loadGatewayConfig();
  const log = (level: string, msg: string, fields?: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
  const gateway = await startGateway({ config, log });
  process.stdout.write(`${JSON.stringify({ msg: "gateway ready", url: gateway.url, docs: `${gateway.url}/docs`, nats: maskUrl(config.runtime.natsUrl) })}\n`);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("info", "gateway stopping", { signal });
    gateway.close().then(
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
