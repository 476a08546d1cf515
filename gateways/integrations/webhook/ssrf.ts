// SSRF guard of outgoing partner calls: a target on a loopback, private, link-local, shared (CGNAT),
// unique-local, multicast or otherwise reserved address is refused, unless explicitly allowed
// (AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1, which `airtwin dev` and tests set). The check runs in the socket's
// DNS lookup, so the address that is checked is the address that is connected to (no DNS rebinding
// between a check and the connection).
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";
import { IntegrationError } from "../errors.ts";

const blocked = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 3],
] as const) blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 127], ["fc00::", 7], ["fe80::", 10], ["ff00::", 8], ["2001:db8::", 32], ["100::", 64],
] as const) blocked.addSubnet(net, bits, "ipv6");

/** True when `address` (an IP literal) must not be called. IPv4-mapped/NAT64/6to4 IPv6 are judged by their IPv4. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, "ipv4");
  if (family !== 6) return true;
  const lower = address.toLowerCase();
  const embedded = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1] ?? hexMappedV4(lower);
  if (embedded !== undefined) return blocked.check(embedded, "ipv4");
  return blocked.check(lower, "ipv6");
}

/** `::ffff:7f00:1` (the hex form of a mapped IPv4) → `127.0.0.1`. */
function hexMappedV4(a: string): string | undefined {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
  if (m === null) return undefined;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Whether private targets are allowed by the environment (`AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1`). */
export function allowPrivateFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.AIRTWIN_WEBHOOK_ALLOW_PRIVATE === "1" || env.AIRTWIN_WEBHOOK_ALLOW_PRIVATE === "true";
}

/** Refuses a URL whose host is an IP literal on a private address (host names are checked at connect time). */
export function checkTargetUrl(target: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new IntegrationError("INTEGRATION_TARGET_REFUSED", `not a URL: ${target}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new IntegrationError("INTEGRATION_TARGET_REFUSED", `not http(s): ${target}`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!allowPrivate && (host === "localhost" || host.endsWith(".localhost") || (isIP(host) !== 0 && isPrivateAddress(host)))) {
    throw new IntegrationError("INTEGRATION_TARGET_REFUSED", `target ${url.host} is a loopback or private address (set AIRTWIN_WEBHOOK_ALLOW_PRIVATE=1 to allow)`);
  }
  return url;
}

/** A socket `lookup` that refuses private addresses (all of a name's addresses must be public). */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, "", 4);
      const list = addresses as unknown as LookupAddress[];
      const refused = allowPrivate ? undefined : list.find((a) => isPrivateAddress(a.address));
      if (refused !== undefined) {
        return callback(new IntegrationError("INTEGRATION_TARGET_REFUSED", `${hostname} resolves to ${refused.address}, a loopback or private address`) as NodeJS.ErrnoException, "", 4);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (first === undefined) return callback(new Error(`${hostname} has no address`) as NodeJS.ErrnoException, "", 4);
      return callback(null, first.address, first.family);
    });
  };
}
