// One `airtwin <role>` process of the soak's system, configured through the environment like any
// deployment: started, waited for (its "… ready" line, which names its /metrics), killed with SIGKILL
// and started again — a fault the soak injects — or stopped with SIGTERM at the end.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const AIRTWIN_JS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "airtwin.js");

export class Role {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly log: WriteStream;
  /** /metrics of the running process (from its ready line; the gateway's on its HTTP port). */
  metricsUrl: string | undefined;
  /** The gateway's base URL. */
  url: string | undefined;
  restarts = 0;

  constructor(
    readonly name: string,
    private readonly args: readonly string[],
    private readonly env: Record<string, string>,
    logDir: string,
  ) {
    this.log = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the process and resolves once it is ready; retries while it exits early (e.g. its node id still held by the killed one). */
  async start(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.startOnce();
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  private startOnce(): Promise<void> {
    const proc = spawn(process.execPath, [AIRTWIN_JS, ...this.args], { env: { ...process.env, ...this.env }, stdio: ["ignore", "pipe", "pipe"] });
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    proc.stderr!.pipe(this.log, { end: false });
    return new Promise((resolve, reject) => {
      let buf = "";
      proc.stdout!.on("data", (chunk: Buffer) => {
        this.log.write(chunk);
        buf += chunk.toString();
        for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          const ready = /^\{"msg":"[a-z]+ ready"/.test(line) ? (JSON.parse(line) as { metrics?: string; url?: string }) : undefined;
          if (ready === undefined) continue;
          this.url = ready.url;
          this.metricsUrl = ready.metrics ?? (ready.url === undefined ? undefined : `${ready.url}/metrics`);
          resolve();
        }
      });
      proc.once("exit", (code, signal) => reject(new Error(`${this.name} exited before it was ready (${code ?? signal}); see its log`)));
    });
  }

  /** SIGKILL, then start again. */
  async crashAndRestart(): Promise<void> {
    this.proc?.kill("SIGKILL");
    await this.exited;
    this.restarts++;
    await this.start();
  }

  async stop(graceMs = 30_000): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}
