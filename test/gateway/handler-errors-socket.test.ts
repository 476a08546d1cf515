// Over a real socket, an error a handler throws after the body was read whole keeps its own code and
// status (a second POST /v1/users of one id is 409 REGISTRY_USER_EXISTS), not "the request body was cut
// off": Node destroys a request once its body is consumed, which must not read as a client gone away.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNatsServer, type TestNatsServer } from "../harness/nats-server.ts";
import { ADMIN_TOKEN, GatewayFixture, listen } from "./fixture.ts";

let server: TestNatsServer;
let f: GatewayFixture;

beforeAll(async () => {
  server = await startNatsServer();
  f = await GatewayFixture.start(server);
  await f.ready();
});

afterAll(async () => {
  await f?.[Symbol.asyncDispose]();
  await server?.stop();
});

describe("handler errors over a socket", () => {
  it("answers a duplicate user with 409 AIRTWIN_ERR_REGISTRY_USER_EXISTS", async () => {
    const url = await listen(await f.buildApp());
    const post = () =>
      fetch(`${url}/v1/users`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ userId: "twice" }),
      });
    expect((await post()).status).toBe(201);
    const again = await post();
    expect(again.status).toBe(409);
    expect(((await again.json()) as { code: string }).code).toBe("AIRTWIN_ERR_REGISTRY_USER_EXISTS");
  });
});
