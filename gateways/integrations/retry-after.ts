// Reads an HTTP Retry-After header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

/** The delay the header asks for in ms, or undefined when absent or unreadable; `now` in epoch ms. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
