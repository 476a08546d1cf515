// The gateway's configuration: the runtime's variables plus its own, validated together; every bad
// variable is named in one AIRTWIN_ERR_CONFIG_INVALID.
import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "../../gateways/http/config.ts";
import { isRuntimeError } from "../../runtime/mod.ts";

const TOKEN = "0123456789abcdef0123";

function problems(env: NodeJS.ProcessEnv): string[] {
  try {
    loadGatewayConfig(env);
  } catch (err) {
    if (!isRuntimeError(err, "CONFIG_INVALID")) throw err;
    return (err.details as { variables: string[] }).variables;
  }
  return [];
}

describe("gateway configuration", () => {
  it("has documented defaults", () => {
    const c = loadGatewayConfig({ AIRTWIN_ADMIN_TOKEN: TOKEN });
    expect(c).toMatchObject({ adminToken: TOKEN, host: "0.0.0.0", rateLimitMax: 120, rateLimitWindowMs: 60_000, ackTimeoutMs: 3000, lingerMs: 2, gatherMs: 10, gatherReadings: 200, logLevel: "info" });
    expect(c.runtime).toMatchObject({ httpPort: 8080, shards: 64, prefix: "airtwin" });
  });

  it("reads its variables", () => {
    const c = loadGatewayConfig({
      AIRTWIN_ADMIN_TOKEN: TOKEN,
      AIRTWIN_HTTP_HOST: "127.0.0.1",
      AIRTWIN_HTTP_PORT: "0",
      AIRTWIN_INGEST_RATE_MAX: "5",
      AIRTWIN_INGEST_RATE_WINDOW_MS: "1000",
      AIRTWIN_INGEST_ACK_TIMEOUT_MS: "500",
      AIRTWIN_INGEST_LINGER_MS: "0",
      AIRTWIN_INGEST_GATHER_MS: "0",
      AIRTWIN_INGEST_GATHER_READINGS: "50",
      AIRTWIN_LOG_LEVEL: "warn",
    });
    expect(c).toMatchObject({ host: "127.0.0.1", rateLimitMax: 5, rateLimitWindowMs: 1000, ackTimeoutMs: 500, lingerMs: 0, gatherMs: 0, gatherReadings: 50, logLevel: "warn" });
    expect(c.runtime.httpPort).toBe(0);
  });

  it("requires an admin token of 16+ characters and names every bad variable at once", () => {
    expect(problems({})).toEqual(["AIRTWIN_ADMIN_TOKEN"]);
    expect(problems({ AIRTWIN_ADMIN_TOKEN: "short" })).toEqual(["AIRTWIN_ADMIN_TOKEN"]);
    expect(problems({ AIRTWIN_ADMIN_TOKEN: TOKEN, AIRTWIN_SHARDS: "0", AIRTWIN_INGEST_RATE_MAX: "many", AIRTWIN_LOG_LEVEL: "loud" }).sort()).toEqual(
      ["AIRTWIN_INGEST_RATE_MAX", "AIRTWIN_LOG_LEVEL", "AIRTWIN_SHARDS"].sort(),
    );
  });

  it("reads the HTTP limits, defaults included, and refuses a request timeout shorter than the headers one", () => {
    expect(loadGatewayConfig({ AIRTWIN_ADMIN_TOKEN: TOKEN }).httpLimits).toEqual({
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 72_000,
      maxConnectionsPerClient: 256,
    });
    const c = loadGatewayConfig({
      AIRTWIN_ADMIN_TOKEN: TOKEN,
      AIRTWIN_HTTP_HEADERS_TIMEOUT_MS: "2000",
      AIRTWIN_HTTP_REQUEST_TIMEOUT_MS: "5000",
      AIRTWIN_HTTP_IDLE_TIMEOUT_MS: "9000",
      AIRTWIN_HTTP_MAX_CONNECTIONS_PER_CLIENT: "0",
    });
    expect(c.httpLimits).toEqual({ headersTimeoutMs: 2000, requestTimeoutMs: 5000, idleTimeoutMs: 9000, maxConnectionsPerClient: 0 });
    expect(problems({ AIRTWIN_ADMIN_TOKEN: TOKEN, AIRTWIN_HTTP_HEADERS_TIMEOUT_MS: "5000", AIRTWIN_HTTP_REQUEST_TIMEOUT_MS: "1000" })).toEqual(["AIRTWIN_HTTP_REQUEST_TIMEOUT_MS"]);
    expect(problems({ AIRTWIN_ADMIN_TOKEN: TOKEN, AIRTWIN_HTTP_IDLE_TIMEOUT_MS: "0", AIRTWIN_HTTP_MAX_CONNECTIONS_PER_CLIENT: "-1" }).sort()).toEqual([
      "AIRTWIN_HTTP_IDLE_TIMEOUT_MS",
      "AIRTWIN_HTTP_MAX_CONNECTIONS_PER_CLIENT",
    ]);
  });

  it("never echoes the admin token in errors", () => {
    try {
      loadGatewayConfig({ AIRTWIN_ADMIN_TOKEN: "secret secret secret" });
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain("secret secret");
    }
  });
});
