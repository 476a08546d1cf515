// Reading a process's own environment variables on top of the runtime's configuration, for the
// gateways' config loaders (gateway, archive): every problem is collected, then reported at once as
// AIRTWIN_ERR_CONFIG_INVALID naming each variable (the runtime's problems included).
import { loadConfig, RuntimeError, type AirtwinConfig, type ConfigProblem } from "../runtime/mod.ts";

export interface EnvReader {
  /** The runtime's configuration, or undefined when it had problems (they are in `problems`). */
  readonly runtime: AirtwinConfig | undefined;
  readonly problems: ConfigProblem[];
  /** A variable's trimmed value; empty counts as unset. */
  raw(name: string): string | undefined;
  /** A decimal integer in [min, max], else `fallback` (and a problem when set but invalid). */
  int(name: string, fallback: number, min: number, max: number): number;
  /** Throws AIRTWIN_ERR_CONFIG_INVALID when there were problems; else the runtime configuration. */
  done(): AirtwinConfig;
}

export function envReader(env: NodeJS.ProcessEnv): EnvReader {
  const problems: ConfigProblem[] = [];
  let runtime: AirtwinConfig | undefined;
  try {
    runtime = loadConfig(env);
  } catch (err) {
    const details = (err as RuntimeError).details as { problems?: ConfigProblem[] } | undefined;
    if (details?.problems === undefined) throw err;
    problems.push(...details.problems);
  }
  const raw = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  };
  return {
    runtime,
    problems,
    raw,
    int(name, fallback, min, max) {
      const v = raw(name);
      if (v === undefined) return fallback;
      const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        problems.push({ variable: name, value: v, reason: `must be an integer from ${min} to ${max}` });
        return fallback;
      }
      return n;
    },
    done() {
      if (problems.length > 0 || runtime === undefined) {
        const list = problems.map((p) => `${p.variable}=${p.value}: ${p.reason}`).join("; ");
        throw new RuntimeError("CONFIG_INVALID", `invalid configuration: ${list}`, { details: { problems, variables: problems.map((p) => p.variable) } });
      }
      return runtime;
    },
  };
}
