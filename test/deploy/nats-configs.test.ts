// The example NATS configs in deploy/nats are accepted by nats-server (-t) and the three cluster files
// agree with each other; configs rendered by deploy/local-nats.ts are accepted too.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { renderNatsServerConfig, resolveNatsServerBinary } from "../../deploy/local-nats.ts";

const dir = resolve(import.meta.dirname, "../../deploy/nats");
const binary = resolveNatsServerBinary();

function check(file: string): { status: number | null; output: string } {
  const r = spawnSync(binary, ["-t", "-c", file], { encoding: "utf8", timeout: 10_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("deploy/nats", () => {
  it.each(["single.conf", "cluster-1.conf", "cluster-2.conf", "cluster-3.conf"])("%s is valid", (name) => {
    const r = check(join(dir, name));
    expect(r.output).toContain("is valid");
    expect(r.status).toBe(0);
  });

  it("cluster-{1,2,3}.conf: one cluster name, unique names and ports, routes naming every node", () => {
    const confs = [1, 2, 3].map((i) => readFileSync(join(dir, `cluster-${i}.conf`), "utf8"));
    const field = (text: string, re: RegExp) => re.exec(text)?.[1];
    const names = confs.map((c) => field(c, /^server_name:\s*(\S+)/m));
    const clients = confs.map((c) => field(c, /^listen:\s*"([^"]+)"/m));
    const routesListen = confs.map((c) => field(c, /^\s+listen:\s*"([^"]+)"/m));
    const clusterNames = confs.map((c) => field(c, /^\s+name:\s*(\S+)/m));
    expect(new Set(names).size).toBe(3);
    expect(new Set(clients).size).toBe(3);
    expect(new Set(clusterNames)).toEqual(new Set(["airtwin"]));
    for (const c of confs) {
      const routes = [...c.matchAll(/"nats:\/\/([^"]+)"/g)].map((m) => m[1]);
      expect(routes.sort()).toEqual([...routesListen].sort());
    }
  });
});

describe("renderNatsServerConfig", () => {
  it("gives local servers room for our streams' reservations whatever the free disk", () => {
    // a stream reserves its max_bytes; nats-server's default limit (75% of the free disk) refused the
    // 10 GiB input stream on small disks
    expect(renderNatsServerConfig({ jetstream: { storeDir: "/s" } })).toContain(`max_file_store: ${2 ** 40}`);
    expect(renderNatsServerConfig({ jetstream: { storeDir: "/s", maxFileBytes: 1 << 30 } })).toContain(`max_file_store: ${1 << 30}`);
  });

  it("renders configs nats-server accepts (JetStream, cluster, mappings)", () => {
    const tmp = mkdtempSync(join(tmpdir(), "airtwin-conf-"));
    try {
      const file = join(tmp, "rendered.conf");
      writeFileSync(
        file,
        renderNatsServerConfig(
          {
            serverName: "n1",
            port: -1,
            jetstream: { storeDir: join(tmp, "store"), maxMemoryBytes: 64 << 20, maxFileBytes: 1 << 30 },
            cluster: { name: "c", port: 16222, routes: ["nats://127.0.0.1:16222", "nats://127.0.0.1:16223"] },
            mappings: { "a.*": "b.{{partition(8,1)}}.{{wildcard(1)}}" },
          },
          join(tmp, "log"),
        ),
      );
      const r = check(file);
      expect(r.output).toContain("is valid");
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
