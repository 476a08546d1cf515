// The runtime's one logging contract: a function of level, message and structured fields. Nodes log JSON
// lines to stderr by default; tests and embedding services pass their own.

/** Where the runtime logs. `fields` are structured (shard, epoch, error…), never interpolated into `msg`. */
export type LogFn = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

/** One JSON object per line on stderr: `{ time, level, msg, …fields }`. */
export const stderrLog: LogFn = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
};
