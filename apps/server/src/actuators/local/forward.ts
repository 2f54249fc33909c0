import {
  type Agent,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import type { Duplex } from "node:stream";

/** Headers that describe one hop's connection and never travel through a proxy (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

export interface ForwardTarget {
  protocol: "http:" | "https:";
  hostname: string;
  port: number;
  /** Prefix for the request path (an upstream URL's path). */
  basePath: string;
  agent: Agent;
}

export type ForwardOutcome =
  | { kind: "responded"; status: number }
  /** Nothing reached the client. `retryable`: nothing reached the target either, so another one may take it. */
  | { kind: "failed"; error: Error; retryable: boolean };

export interface ForwardOptions {
  /** Headers added to the response (e.g. which replica answered). */
  responseHeaders?: Record<string, string>;
  /** Fail unanswered requests with 504 after this long. */
  timeoutMs?: number;
  /** On a connection failure, return `failed` with `retryable` instead of answering 502, when safe. */
  allowRetry?: boolean;
}

export function targetFromUrl(url: string, agent: Agent): ForwardTarget {
  const parsed = new URL(url);
  return {
    protocol: parsed.protocol === "https:" ? "https:" : "http:",
    hostname: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: Number(parsed.port) || (parsed.protocol === "https:" ? 443 : 80),
    basePath: parsed.pathname.replace(/\/$/, ""),
    agent,
  };
}

function forwardedHeaders(
  req: IncomingMessage,
  target: ForwardTarget,
  keep: ReadonlySet<string> = new Set(),
): IncomingHttpHeaders {
  const listed = new Set(
    (req.headers.connection ?? "")
      .split(",")
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean),
  );
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (keep.has(name) || (!HOP_BY_HOP.has(name) && !listed.has(name))) headers[name] = value;
  }
  const client = req.socket.remoteAddress ?? "";
  const priorFor = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = priorFor ? `${priorFor}, ${client}` : client;
  headers["x-forwarded-proto"] ??= "encrypted" in req.socket ? "https" : "http";
  if (req.headers.host) headers["x-forwarded-host"] ??= req.headers.host;
  const defaultPort = target.protocol === "https:" ? 443 : 80;
  const hostname = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  headers.host = target.port === defaultPort ? hostname : `${hostname}:${target.port}`;
  return headers;
}

/** The request to `target` that carries `req` on: its method, and its path under the target's base path. */
function requestTo(
  target: ForwardTarget,
  req: IncomingMessage,
  headers: IncomingHttpHeaders,
  agent: Agent | false,
): ClientRequest {
  const send = target.protocol === "https:" ? httpsRequest : request;
  return send({
    protocol: target.protocol,
    hostname: target.hostname,
    port: target.port,
    method: req.method,
    path: `${target.basePath}${req.url ?? "/"}`,
    headers,
    agent,
  });
}

/** True when the request carries no body, so it can be sent again to another target. */
function isReplayable(req: IncomingMessage): boolean {
  const method = req.method ?? "GET";
  const bodyless = !req.headers["transfer-encoding"] && (req.headers["content-length"] ?? "0") === "0";
  return bodyless && ["GET", "HEAD", "OPTIONS"].includes(method);
}

/**
 * Forwards one request to `target` and streams the answer back. Resolves when the exchange is over:
 * `responded` once the target's status was sent to the client, `failed` when it never answered.
 */
export function forwardRequest(
  req: IncomingMessage,
  res: ServerResponse,
  target: ForwardTarget,
  options: ForwardOptions = {},
): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    const replayable = options.allowRetry === true && isReplayable(req);
    let settled = false;
    const settle = (outcome: ForwardOutcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const upstream = requestTo(target, req, forwardedHeaders(req, target), target.agent);
    let answered = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => upstream.destroy(new GatewayTimeout(options.timeoutMs ?? 0)), options.timeoutMs);

    upstream.on("response", (answer) => {
      answered = true;
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) {
        if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      }
      try {
        res.writeHead(answer.statusCode ?? 502, { ...headers, ...options.responseHeaders });
      } catch (error) {
        // A header Node refuses to send on: answer 502 rather than relay it.
        clearTimeout(timer);
        upstream.destroy();
        if (!res.headersSent)
          res.writeHead(502, { "content-type": "text/plain" }).end("bad upstream response\n");
        return settle({ kind: "failed", error: error as Error, retryable: false });
      }
      answer.pipe(res);
      answer.on("error", () => res.destroy());
      res.on("finish", () => {
        clearTimeout(timer);
        settle({ kind: "responded", status: answer.statusCode ?? 502 });
      });
      res.on("close", () => {
        clearTimeout(timer);
        if (!res.writableFinished) upstream.destroy();
        settle({ kind: "responded", status: res.writableFinished ? (answer.statusCode ?? 502) : 499 });
      });
    });
    upstream.on("error", (error) => {
      clearTimeout(timer);
      if (answered) {
        res.destroy();
        return settle({ kind: "responded", status: 502 });
      }
      if (replayable && !(error instanceof GatewayTimeout) && !res.headersSent && !res.destroyed) {
        return settle({ kind: "failed", error, retryable: true });
      }
      if (!res.headersSent && !res.destroyed) {
        const status = error instanceof GatewayTimeout ? 504 : 502;
        res.writeHead(status, { "content-type": "text/plain", ...options.responseHeaders });
        res.end(status === 504 ? "upstream timed out\n" : "upstream unreachable\n");
      }
      settle({ kind: "failed", error, retryable: false });
    });
    // A client that goes away before the answer takes its request with it.
    res.once("close", () => {
      if (!answered) upstream.destroy();
    });

    if (replayable) upstream.end();
    else req.pipe(upstream);
  });
}

class GatewayTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "GatewayTimeout";
  }
}

/** The hop-by-hop headers an upgrade must carry to the next hop (RFC 9110 §7.8). */
const UPGRADE_HEADERS = new Set(["connection", "upgrade"]);

function statusLine(status: number, message: string, headers: Record<string, string | string[]>): string {
  const lines = Object.entries(headers).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((one) => `${name}: ${one}`),
  );
  return [`HTTP/1.1 ${status} ${message}`, ...lines, "", ""].join("\r\n");
}

/**
 * Forwards a protocol upgrade (WebSocket and the like) to `target`: on its 101 the two sockets are joined both
 * ways until either side closes; any other answer is relayed and the client's socket closed. Resolves when the
 * upgraded connection ends, or at once when there was none.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: ForwardTarget,
  options: Pick<ForwardOptions, "responseHeaders"> = {},
): Promise<void> {
  return new Promise((resolve) => {
    // An upgraded connection is never returned to a pool.
    const upstream = requestTo(target, req, forwardedHeaders(req, target, UPGRADE_HEADERS), false);
    client.on("error", () => upstream.destroy());
    upstream.on("upgrade", (answer, socket, upstreamHead) => {
      const headers: Record<string, string | string[]> = { ...options.responseHeaders };
      for (const [name, value] of Object.entries(answer.headers))
        if (value !== undefined) headers[name] = value;
      client.write(statusLine(101, answer.statusMessage ?? "Switching Protocols", headers));
      if (upstreamHead.length > 0) client.write(upstreamHead);
      if (head.length > 0) socket.write(head);
      socket.on("error", () => client.destroy());
      client.on("error", () => socket.destroy());
      socket.pipe(client).pipe(socket);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        socket.destroy();
        client.destroy();
        resolve();
      };
      socket.once("close", end);
      client.once("close", end);
    });
    upstream.on("response", (answer) => {
      const headers: Record<string, string | string[]> = { ...options.responseHeaders, connection: "close" };
      for (const [name, value] of Object.entries(answer.headers))
        if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      client.write(statusLine(answer.statusCode ?? 502, answer.statusMessage ?? "", headers));
      answer.pipe(client);
      answer.on("end", () => {
        client.end();
        resolve();
      });
    });
    upstream.on("error", () => {
      if (client.writable)
        client.end(statusLine(502, "Bad Gateway", { "content-type": "text/plain", connection: "close" }));
      resolve();
    });
    upstream.end();
  });
}
