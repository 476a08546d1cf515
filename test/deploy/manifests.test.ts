// deploy/ (Dockerfile, compose.yaml, k8s/, prometheus/, grafana/) against the code: Docker does not run
// here, so the files are parsed and every image, command, port, environment variable, file and metric
// they name is checked to exist in the project and to agree across files. A renamed variable or
// metric, a new top-level folder the image does not copy, a probe on the wrong port: each fails here.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { resolveNatsServerBinary } from "../../deploy/local-nats.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const DEPLOY = join(ROOT, "deploy");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const SOURCE_DIRS = ["bin", "cli", "runtime", "actors", "gateways", "deploy", "sim"];
const IMAGE = "airtwin";

type Obj = Record<string, unknown>;
type Env = Record<string, string>;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|js)$/.test(e.name) && !/\.test\.ts$/.test(e.name)) out.push(rel);
  }
  return out;
}
const SOURCES = SOURCE_DIRS.filter((d) => existsSync(join(ROOT, d))).flatMap(sourceFiles);
const SOURCE_TEXT = SOURCES.map(read).join("\n");

/** Every environment variable the code reads (error codes excluded). */
const KNOWN_ENV = new Set([...SOURCE_TEXT.matchAll(/\b(AIRTWIN_(?!ERR_)[A-Z0-9_]+|NATS_URL|DATABASE_URL)\b/g)].map((m) => m[1]!));

/** The `airtwin <command>`s of cli/main.ts. */
const COMMANDS = new Set([...read("cli/main.ts").matchAll(/case "([a-z]+)":/g)].map((m) => m[1]!).filter((c) => c !== "help"));

/** Metric name → its labels, from every prom-client declaration in the code. */
const METRICS = new Map<string, Set<string>>();
for (const m of SOURCE_TEXT.matchAll(/name:\s*"(airtwin_[a-z0-9_]+)"([\s\S]*?)registers/g)) {
  const labels = /labelNames:\s*\[([^\]]*)\]/.exec(m[2]!)?.[1] ?? "";
  METRICS.set(m[1]!, new Set([...labels.matchAll(/"([a-z_]+)"/g)].map((l) => l[1]!)));
}

/** The declared metric behind a name used in a query (`_bucket`, `_sum`, `_count` of a histogram). */
function declared(name: string): string | undefined {
  if (METRICS.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  return METRICS.has(base) ? base : undefined;
}

/** Checks a PromQL expression: its metrics exist, and labels it groups or shows by are theirs. */
function checkQuery(expr: string, legend = ""): string[] {
  const problems: string[] = [];
  const names = [...expr.matchAll(/\b(airtwin_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
  if (names.length === 0) problems.push(`no airtwin metric in ${expr}`);
  const labels = new Set(["le", "instance", "job"]);
  for (const n of names) {
    const d = declared(n);
    if (d === undefined) problems.push(`unknown metric ${n}`);
    else for (const l of METRICS.get(d)!) labels.add(l);
  }
  const used = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(",").map((s) => s.trim()));
  used.push(...[...legend.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]!));
  for (const l of used) if (!labels.has(l)) problems.push(`label ${l} is not one of ${[...labels].join(", ")} (${expr})`);
  return problems;
}

describe("the code's inventory", () => {
  it("finds the variables, commands and metrics the checks below rely on", () => {
    for (const v of ["NATS_URL", "DATABASE_URL", "AIRTWIN_ADMIN_TOKEN", "AIRTWIN_HTTP_PORT", "AIRTWIN_METRICS_PORT", "AIRTWIN_METRICS_HOST", "AIRTWIN_NODE_ID"]) expect(KNOWN_ENV, v).toContain(v);
    expect(KNOWN_ENV).not.toContain("AIRTWIN_NO_SUCH_THING");
    for (const c of ["node", "gateway", "archive", "integrations"]) expect(COMMANDS, c).toContain(c);
    expect(METRICS.get("airtwin_gateway_http_request_duration_seconds")).toEqual(new Set(["route", "method", "status"]));
    expect(checkQuery("sum by (nope) (rate(airtwin_nope_total[1m]))")).toEqual(["unknown metric airtwin_nope_total", expect.stringContaining("label nope")]);
  });
});

describe("deploy/Dockerfile", () => {
  const dockerfile = read("deploy/Dockerfile");
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));

  it("copies files that exist, and every folder the CLI imports (transitively)", () => {
    for (const c of copied) expect(existsSync(join(ROOT, c)), c).toBe(true);
    // walk the relative imports from the entry point
    const seen = new Set<string>();
    const queue = ["bin/airtwin.js", "cli/main.ts"];
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const m of read(file).matchAll(/(?:from\s+|import\()\s*"(\.{1,2}\/[^"]+)"/g)) {
        const target = relative(ROOT, resolve(ROOT, dirname(file), m[1]!));
        if (existsSync(join(ROOT, target))) queue.push(target);
      }
    }
    const folders = new Set([...seen].map((f) => f.split("/")[0]!));
    for (const f of folders) expect(copied, `the image needs ${f}/`).toContain(f);
    expect(copied).toEqual(expect.arrayContaining(["package.json", "package-lock.json"]));
  });

  it("runs bin/airtwin.js, sets only variables the code reads, and exposes the ports it serves", () => {
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/airtwin.js"\]$/m);
    const cmd = /^CMD \["([a-z]+)"\]$/m.exec(dockerfile)?.[1];
    expect(COMMANDS).toContain(cmd);
    const env = /^ENV ([\s\S]*?)\n(?!\s)/m.exec(dockerfile)![1]!;
    for (const [, name] of env.matchAll(/([A-Z_]+)=/g)) if (name !== "NODE_ENV") expect(KNOWN_ENV, name).toContain(name);
    expect(/^EXPOSE (.+)$/m.exec(dockerfile)![1]!.split(" ")).toEqual(["8080", "9464"]);
    expect(read("runtime/config.ts")).toMatch(/int\("AIRTWIN_HTTP_PORT", 8080,/);
  });
});

describe("deploy/compose.yaml", () => {
  const compose = parse(read("deploy/compose.yaml"), { merge: true }) as { services: Record<string, Obj>; volumes: Obj };
  const services = compose.services;
  const ours = Object.entries(services).filter(([, s]) => s.image === `${IMAGE}:local`);
  const envOf = (s: Obj) => s.environment as Env;

  it("runs existing commands with variables the code reads", () => {
    expect(ours.map(([name]) => name).sort()).toEqual(["archive", "gateway-1", "gateway-2", "integrations", "node-1", "node-2", "node-3"]);
    for (const [name, s] of ours) {
      expect(COMMANDS, name).toContain((s.command as string[])[0]);
      for (const v of Object.keys(envOf(s))) expect(KNOWN_ENV, `${name}: ${v}`).toContain(v);
      expect((s.build as Obj).dockerfile).toBe("deploy/Dockerfile");
      for (const d of s.depends_on as string[]) expect(services, `${name} depends on ${d}`).toHaveProperty(d);
    }
  });

  it("points every process at all three NATS servers, which route to each other", () => {
    const nats = Object.entries(services).filter(([, s]) => String(s.image).startsWith("nats:"));
    expect(nats.map(([n]) => n)).toEqual(["nats-1", "nats-2", "nats-3"]);
    const help = spawnSync(resolveNatsServerBinary(), ["--help"], { encoding: "utf8" });
    const helpText = `${help.stdout}${help.stderr}`;
    for (const [name, s] of nats) {
      const args = s.command as string[];
      for (const flag of args.filter((a) => a.startsWith("--"))) expect(helpText, `nats-server knows ${flag}`).toContain(flag);
      expect(args[args.indexOf("--name") + 1]).toBe(name);
      expect(args[args.indexOf("--routes") + 1]!.split(",").sort()).toEqual(nats.map(([n]) => `nats://${n}:6222`));
    }
    for (const [name, s] of ours) {
      expect(envOf(s).NATS_URL!.split(",").sort(), name).toEqual(nats.map(([n]) => `nats://${n}:4222`));
      expect(envOf(s).AIRTWIN_REPLICAS).toBe("3");
    }
  });

  it("gives nodes unique ids, gateways matching ports and probes, and Prometheus every target", () => {
    const ids = ours.filter(([, s]) => (s.command as string[])[0] === "node").map(([, s]) => envOf(s).AIRTWIN_NODE_ID);
    expect(new Set(ids).size).toBe(3);
    const prometheus = parse(read("deploy/prometheus/prometheus.yml")) as { scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }> };
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((sc) => sc.targets)).sort();
    const expected: string[] = [];
    for (const [name, s] of ours) {
      const env = envOf(s);
      if ((s.command as string[])[0] === "gateway") {
        const port = env.AIRTWIN_HTTP_PORT;
        expect((s.ports as string[])[0]!.split(":")[1], name).toBe(port);
        expect(JSON.stringify((s.healthcheck as Obj).test), name).toContain(`127.0.0.1:${port}/readyz`);
        expected.push(`${name}:${port}`);
      } else {
        expect(env.AIRTWIN_METRICS_PORT, name).toBe("9464");
        expected.push(`${name}:9464`);
      }
      expect(env.AIRTWIN_METRICS_HOST).toBe("0.0.0.0");
    }
    expect(targets).toEqual(expected.sort());
  });

  it("mounts files that exist and declares its volumes", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of (s.volumes as string[] | undefined) ?? []) {
        const [source] = v.split(":");
        if (source!.startsWith(".")) expect(existsSync(join(DEPLOY, source!)), `${name}: ${source}`).toBe(true);
        else expect(compose.volumes, `${name}: volume ${source}`).toHaveProperty(source!);
      }
    }
    for (const s of ["archive", "integrations"]) expect(services[s]!.environment, s).toMatchObject({ DATABASE_URL: expect.stringContaining("@postgres:5432/") });
  });
});

describe("deploy/k8s", () => {
  const kustomization = parse(read("deploy/k8s/kustomization.yaml")) as { resources: string[]; images: Array<{ name: string }> };
  const docs = kustomization.resources.flatMap((f) => parseAllDocuments(read(`deploy/k8s/${f}`)).map((d) => d.toJS() as Obj));
  const kind = (k: string) => docs.filter((d) => d.kind === k);
  const meta = (d: Obj) => d.metadata as { name: string; labels?: Env; annotations?: Env };
  const workloads = [...kind("Deployment"), ...kind("StatefulSet")];
  const podOf = (w: Obj) => (w.spec as Obj).template as { metadata: { labels: Env; annotations?: Env }; spec: Obj };
  const containersOf = (w: Obj) => podOf(w).spec.containers as Array<Obj & { ports?: Array<{ name: string; containerPort: number }> }>;
  const configMap = kind("ConfigMap").find((c) => meta(c).name === "airtwin-config")!;
  const secret = kind("Secret").find((c) => meta(c).name === "airtwin-secrets")!;
  const matches = (selector: Env, labels: Env) => Object.entries(selector).every(([k, v]) => labels[k] === v);

  it("lists every manifest of the folder and names our image", () => {
    const files = readdirSync(join(DEPLOY, "k8s")).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml" && f !== "nats-values.yaml");
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(kustomization.images.map((i) => i.name)).toEqual([IMAGE]);
    for (const key of Object.keys(configMap.data as Env)) expect(KNOWN_ENV, key).toContain(key);
    expect((configMap.data as Env).AIRTWIN_METRICS_HOST).toBe("0.0.0.0");
  });

  it("runs our workloads with existing commands, known variables, and references that resolve", () => {
    const ourWorkloads = workloads.filter((w) => containersOf(w).some((c) => c.image === IMAGE));
    expect(ourWorkloads.map((w) => meta(w).name).sort()).toEqual(["airtwin-archive", "airtwin-gateway", "airtwin-integrations", "airtwin-node"]);
    for (const w of ourWorkloads) {
      for (const c of containersOf(w)) {
        const name = `${meta(w).name}/${c.name}`;
        expect(COMMANDS, name).toContain((c.args as string[])[0]);
        for (const from of (c.envFrom as Array<{ configMapRef?: { name: string } }>) ?? []) expect(from.configMapRef?.name, name).toBe("airtwin-config");
        for (const e of c.env as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>) {
          expect(KNOWN_ENV, `${name}: ${e.name}`).toContain(e.name);
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(secret.stringData, `${name}: ${ref.key}`).toHaveProperty(ref.key);
        }
        // the ports the process is told to serve are the ports declared, probed and scraped
        const env = Object.fromEntries((c.env as Array<{ name: string; value?: string }>).map((e) => [e.name, e.value]));
        const served = [env.AIRTWIN_HTTP_PORT, env.AIRTWIN_METRICS_PORT].filter((p) => p !== undefined).map(Number);
        expect(c.ports!.map((p) => p.containerPort), name).toEqual(served);
        for (const probe of [c.readinessProbe, c.livenessProbe] as Array<{ httpGet?: { port: string } } | undefined>) {
          if (probe?.httpGet) expect(c.ports!.map((p) => p.name), name).toContain(probe.httpGet.port);
        }
        expect(c.readinessProbe, `${name} has a readiness probe`).toBeDefined();
        expect(served.map(String), name).toContain(podOf(w).metadata.annotations?.["prometheus.io/port"]);
      }
    }
  });

  it("hands shards off within the grace period and keeps nodes and gateways available during drains", () => {
    const node = workloads.find((w) => meta(w).name === "airtwin-node")!;
    expect(node.kind).toBe("StatefulSet");
    // the node id is the pod's name: stable across restarts, unique
    expect(JSON.stringify(containersOf(node)[0]!.env)).toContain('"fieldPath":"metadata.name"');
    const closeTimeoutMs = Number(/positive\("closeTimeoutMs", o\.closeTimeoutMs, ([\d_]+)\)/.exec(read("runtime/ownership/options.ts"))![1]!.replace(/_/g, ""));
    expect((podOf(node).spec.terminationGracePeriodSeconds as number) * 1000).toBeGreaterThan(closeTimeoutMs);
    const pdbs = kind("PodDisruptionBudget");
    for (const w of workloads.filter((x) => ["airtwin-node", "airtwin-gateway"].includes(meta(x).name))) {
      expect(pdbs.some((p) => matches((p.spec as { selector: { matchLabels: Env } }).selector.matchLabels, podOf(w).metadata.labels)), meta(w).name).toBe(true);
    }
  });

  it("selects pods and ports that exist from every Service and budget", () => {
    for (const s of kind("Service")) {
      const spec = s.spec as { selector: Env; ports: Array<{ targetPort: string }> };
      const targets = workloads.filter((w) => matches(spec.selector, podOf(w).metadata.labels));
      expect(targets.length, meta(s).name).toBeGreaterThan(0);
      const portNames = targets.flatMap((w) => containersOf(w).flatMap((c) => (c.ports ?? []).map((p) => p.name)));
      for (const p of spec.ports) expect(portNames, meta(s).name).toContain(p.targetPort);
    }
    for (const p of kind("PodDisruptionBudget")) {
      const sel = (p.spec as { selector: { matchLabels: Env } }).selector.matchLabels;
      expect(workloads.some((w) => matches(sel, podOf(w).metadata.labels)), meta(p).name).toBe(true);
    }
    const nats = parse(read("deploy/k8s/nats-values.yaml")) as { config: { cluster: { enabled: boolean; replicas: number }; jetstream: { enabled: boolean } } };
    expect(nats.config.cluster).toEqual({ enabled: true, replicas: 3 });
    expect(nats.config.jetstream.enabled).toBe(true);
    expect((configMap.data as Env).AIRTWIN_REPLICAS).toBe("3");
  });
});

describe("deploy/prometheus and deploy/grafana", () => {
  it("alert rules query metrics and labels that exist", () => {
    const rules = parse(read("deploy/prometheus/alerts.yml")) as { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThan(3);
    for (const r of all) expect(checkQuery(r.expr), r.alert).toEqual([]);
  });

  it("the Grafana dashboard queries metrics and labels that exist, and is provisioned from where compose mounts it", () => {
    const dash = JSON.parse(read("deploy/grafana/dashboards/airtwin.json")) as { uid: string; panels: Array<{ title: string; type: string; targets?: Array<{ expr: string; legendFormat?: string }> }> };
    const targets = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ ...t, title: p.title })));
    expect(targets.length).toBeGreaterThan(20);
    for (const t of targets) expect(checkQuery(t.expr, t.legendFormat), t.title).toEqual([]);
    // every family of metrics has a panel
    for (const family of ["airtwin_gateway_", "airtwin_units_applied", "airtwin_consumer_lag", "airtwin_archive_", "airtwin_integration_"]) {
      expect(targets.some((t) => t.expr.includes(family)), family).toBe(true);
    }
    const provider = parse(read("deploy/grafana/provisioning/dashboards/airtwin.yml")) as { providers: Array<{ options: { path: string } }> };
    const compose = read("deploy/compose.yaml");
    expect(compose).toContain(`./grafana/dashboards:${provider.providers[0]!.options.path}`);
    const datasource = parse(read("deploy/grafana/provisioning/datasources/prometheus.yml")) as { datasources: Array<{ url: string }> };
    expect(datasource.datasources[0]!.url).toBe("http://prometheus:9090");
  });
});
