// A minimal server-sent-events reader over node:http for tests: collects every event that has data.
import { get as httpGet, type IncomingMessage } from "node:http";

export interface SseEvent {
  event: string;
  id?: string;
  data: unknown;
}

/** Opens an SSE stream; `opened` resolves with the response (rejects if the request fails). */
export function sse(url: string, headers: Record<string, string> = {}): { events: SseEvent[]; opened: Promise<IncomingMessage>; close: () => void } {
  const events: SseEvent[] = [];
  let close = () => undefined as void;
  const opened = new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpGet(url, { headers, agent: false }, (res) => {
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const e: SseEvent = { event: "message", data: undefined };
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) e.event = line.slice(7);
            else if (line.startsWith("id: ")) e.id = line.slice(4);
            else if (line.startsWith("data: ")) e.data = JSON.parse(line.slice(6));
          }
          if (e.data !== undefined) events.push(e);
        }
      });
      resolve(res);
    });
    req.on("error", reject);
    close = () => void req.destroy();
  });
  opened.catch(() => undefined); // a caller that never awaits it sees no unhandled rejection
  return { events, opened, close };
}
