// A child `airtwin <role>` process of `airtwin dev`, logging to its own file, in its own process group.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DevRole } from "./dev-roles.ts";
import { roleV8Flags } from "./role-v8-flags.ts";

const BIN = fileURLToPath(new URL("../bin/airtwin.js", import.meta.url));

/** A child `airtwin <role>` process with its log file. */
export class Child {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly proc: ChildProcess;

  readonly name: string;
  readonly stopStage: number;
  readonly stopGraceMs: number;

  constructor(
    role: DevRole,
    readonly logFile: string,
  ) {
    this.name = role.name;
    this.stopStage = role.stopStage;
    this.stopGraceMs = role.stopGraceMs;
    const fd = openSync(logFile, "a");
    try {
      // own process group: a terminal's Ctrl-C reaches only `airtwin dev`, which stops children in order
      const v8Flags = roleV8Flags(role.args[0]);
      this.proc = spawn(process.execPath, [...v8Flags, BIN, ...role.args], { env: role.env, stdio: ["ignore", fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise((r) => this.proc.once("exit", (code, signal) => r((this.exit = { code, signal }))));
    children.add(this);
    void this.exited.then(() => children.delete(this));
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.proc.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.kill("SIGTERM");
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === "timeout") {
      process.stderr.write(`airtwin dev: ${this.name} did not stop within ${graceMs} ms; killing it\n`);
      this.kill("SIGKILL");
      await this.exited;
    }
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  }
}

/** Children still running; a crashed `airtwin dev` leaves none behind. */
export const children = new Set<Child>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGTERM");
});

