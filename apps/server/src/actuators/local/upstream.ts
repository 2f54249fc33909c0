import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface HelloUpstreamOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Added to every answer; `?delayMs=` overrides it per request. */
  latencyMs?: number;
  /** Up to this much more, at random. */
  jitterMs?: number;
}

export interface HelloUpstream {
  url: string;
  port: number;
  /** Requests answered so far. */
  requests(): number;
  close(): Promise<void>;
}

const MAX_DELAY_MS = 60_000;

/**
 * A tiny upstream for the demo and tests: answers `hello` after a configurable latency.
 * `?delayMs=N` sets one request's latency, `?status=N` its status code; `Upgrade: echo` gets an echo connection.
 */
export async function startHelloUpstream(options: HelloUpstreamOptions = {}): Promise<HelloUpstream> {
  const latencyMs = options.latencyMs ?? 0;
  const jitterMs = options.jitterMs ?? 0;
  let answered = 0;
  const server = createServer((req, res) => {
    const query = new URL(req.url ?? "/", "http://upstream").searchParams;
    const requestedDelay = Number(query.get("delayMs"));
    const delay = query.has("delayMs")
      ? Math.min(MAX_DELAY_MS, Math.max(0, Number.isFinite(requestedDelay) ? requestedDelay : 0))
      : latencyMs + Math.random() * jitterMs;
    const requestedStatus = Number(query.get("status"));
    const status =
      Number.isInteger(requestedStatus) && requestedStatus >= 200 && requestedStatus <= 599
        ? requestedStatus
        : 200;
    // Drain the request body before answering, so keep-alive connections stay usable.
    req.resume();
    req.on("end", () => {
      const timer = setTimeout(() => {
        answered += 1;
        res.writeHead(status, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            hello: "from the ProxyScale demo upstream",
            path: req.url,
            delayMs: Math.round(delay),
          }),
        );
      }, delay);
      res.once("close", () => clearTimeout(timer));
    });
  });
  // `Upgrade: echo`: switches protocols and echoes every byte back, a stand-in for a WebSocket backend.
  server.on("upgrade", (req, socket, head) => {
    if (req.headers.upgrade?.toLowerCase() !== "echo") {
      const body = "only Upgrade: echo here\n";
      socket.end(
        `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
      return;
    }
    socket.write("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n");
    if (head.length > 0) socket.write(head);
    socket.on("error", () => socket.destroy());
    socket.pipe(socket);
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    requests: () => answered,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
