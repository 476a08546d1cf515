// The ceiling of the gateway benchmark: a bare fastify server whose POST /v1/devices/:id/readings
// answers 202 without any work (fastify still parses the JSON body). A script, run as a child process
// by bench/gateway.ts (`node --import tsx bench/gateway-ceiling.ts <port>`), so it has a process of its
// own like the gateway; prints "listening <port>" when ready.
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.post("/v1/devices/:id/readings", async (_req, reply) => {
  reply.code(202);
  return { accepted: 1 };
});
await app.listen({ port: Number(process.argv[2] ?? 0), host: "127.0.0.1" });
const addr = app.server.address();
process.stdout.write(`listening ${typeof addr === "object" && addr !== null ? addr.port : "?"}\n`);
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
