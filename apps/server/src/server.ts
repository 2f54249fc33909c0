import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import {
  type AuthConfig,
  appRouter,
  createContext,
  createLiveFeed,
  createRestHandler,
  createTokenVerifier,
  DEFAULT_MAX_BODY_BYTES,
  type LiveFeed,
  prepareTrpcRequest,
} from "@proxyscale/api";
import type { MetricsSourceHealth, Tier } from "@proxyscale/core";
import type { Database, Logger, ScalingExecutor } from "@proxyscale/db";
import { getErrorShape, TRPCError } from "@trpc/server";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { createPendingExecutor } from "./executor.ts";
import { SECURITY_HEADERS } from "./headers.ts";
import { createServerMetrics, type ServerMetrics } from "./metrics.ts";
import { createMetricsGuard, type MetricsAccess } from "./metrics-access.ts";
import { createSimulationPool } from "./simulation-pool.ts";
import { createStaticHandler } from "./static.ts";

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export const DEFAULT_ADMIN_DIST = fileURLToPath(new URL("../../admin/dist", import.meta.url));

export interface ServerDeps {
  database: Database;
  auth: AuthConfig;
  logger: Logger;
  clock?: () => number;
  /**
   * Takes the events `scaling.execute` creates: startServer passes the control loop's. Default: leave them
   * pending for an external actuator (createPendingExecutor).
   */
  executor?: ScalingExecutor;
  /** Told after metrics are stored (the control loop evaluates those proxies at once). */
  onMetricsRecorded?: (proxyIds: readonly string[]) => void;
  maxBodyBytes?: number;
  /**
   * Longest time a request may take to arrive, headers and body (PROXYSCALE_REQUEST_TIMEOUT_SECONDS). Past it the
   * server answers 408 and closes the connection. Default 10 s.
   */
  requestTimeoutMs?: number;
  /**
   * The server's public base URL (PROXYSCALE_PUBLIC_URL); the OpenAPI document's `servers` is it plus `/api`.
   * Default: the URL the server listens on. Never taken from a request's Host header.
   */
  publicUrl?: string;
  /** Built admin UI to serve at `/`; default apps/admin/dist when it exists. `null` serves none. */
  adminDistDir?: string | null;
  requestsPerMinute?: Partial<Record<Tier, number>>;
  /** Most milliseconds between sharing rate-limit counts with the other servers (default 1,000). */
  rateLimitSyncMs?: number;
  /** The control loop's reconcile interval, so evaluate's fallback counts as the loop's does. */
  reconcileIntervalMs?: number;
  /** How far ahead of the clock a sample's recordedAt may be (PROXYSCALE_MAX_CLOCK_SKEW_SECONDS; default 60). */
  maxClockSkewSeconds?: number;
  metrics?: ServerMetrics;
  /**
   * What `live.onChange` serves. startServer passes one that the control loop's telemetry feeds too; default:
   * one of the server's own (it hears the API's hooks, and the other servers' on PostgreSQL). The server
   * starts it on listen and closes it on close, whoever made it.
   */
  live?: LiveFeed;
  /** Who may scrape /metrics (PROXYSCALE_METRICS_TOKEN, PROXYSCALE_METRICS_PUBLIC). Default: an admin JWT only. */
  metricsAccess?: MetricsAccess;
  /** Longest wait for in-flight requests on close before their connections are cut. Default 10 s. */
  shutdownGraceMs?: number;
  /** A scraped proxy's last scrapes (startServer passes its scraper's). */
  sourceHealth?: (proxyId: string) => MetricsSourceHealth | null;
}

export interface ProxyScaleServer {
  httpServer: http.Server;
  metrics: ServerMetrics;
  live: LiveFeed;
  /** Resolves with the bound URL (port 0 picks a free port). */
  listen(port: number, host?: string): Promise<{ url: string; port: number }>;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then resolves. Leaves the database open. */
  close(): Promise<void>;
}

const TRPC_PROCEDURES = new Set(Object.keys(appRouter._def.procedures));

/**
 * A route label with bounded cardinality: REST requests by their route template, tRPC calls by procedure,
 * anything that matched no route as "unmatched".
 */
function routeLabel(pathname: string, restTemplate: string | undefined): string {
  if (pathname.startsWith("/api")) return restTemplate ? `/api${restTemplate}` : "unmatched";
  if (pathname.startsWith("/trpc/")) {
    const procedures = pathname.slice("/trpc/".length).split(",");
    if (!procedures.every((procedure) => TRPC_PROCEDURES.has(procedure))) return "unmatched";
    return procedures.length > 1 ? "/trpc/(batch)" : `/trpc/${procedures[0]}`;
  }
  if (["/metrics", "/healthz", "/readyz"].includes(pathname)) return pathname;
  return "static";
}

export function createServer(deps: ServerDeps): ProxyScaleServer {
  const logger = deps.logger;
  const metrics = deps.metrics ?? createServerMetrics();
  const live =
    deps.live ?? createLiveFeed({ db: deps.database.db, database: deps.database, logger, clock: deps.clock });
  // Simulations run on worker threads, so a long replay never holds this event loop.
  const simulations = createSimulationPool();
  const contextFactory = createContext({
    db: deps.database.db,
    clock: deps.clock ?? Date.now,
    logger,
    executor: deps.executor ?? createPendingExecutor(logger),
    onMetricsRecorded: deps.onMetricsRecorded,
    auth: deps.auth,
    telemetry: metrics.telemetry,
    live,
    requestsPerMinute: deps.requestsPerMinute,
    rateLimitSyncMs: deps.rateLimitSyncMs,
    reconcileIntervalMs: deps.reconcileIntervalMs,
    maxClockSkewSeconds: deps.maxClockSkewSeconds,
    sourceHealth: deps.sourceHealth,
    simulate: simulations.simulate,
  });
  const logServerError = ({
    error,
    path,
    status,
  }: {
    error: Error;
    path: string | undefined;
    status: number;
  }) => {
    if (status >= 500) {
      const cause = (error as { cause?: unknown }).cause;
      logger.error({ path, status, err: cause instanceof Error ? cause : error }, "request failed");
    }
  };
  const guardMetrics = createMetricsGuard(
    deps.metricsAccess ?? {},
    createTokenVerifier(deps.auth, deps.clock ?? Date.now),
  );
  const requestTimeoutMs = deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const restTemplates = new WeakMap<http.IncomingMessage, string>();
  const rest = createRestHandler({
    createContext: contextFactory,
    onRoute: (req, template) => restTemplates.set(req, template),
    maxBodyBytes: deps.maxBodyBytes,
    requestTimeoutMs,
    publicUrl: () => deps.publicUrl ?? listeningUrl,
    onError: logServerError,
  });
  const trpc = createHTTPHandler({
    router: appRouter,
    basePath: "/trpc/",
    maxBodySize: deps.maxBodyBytes,
    // EventSource sends no headers: a subscription's token comes in connectionParams, which httpSubscriptionLink
    // puts in the query string. Nothing here logs or labels a query string (see the request log below).
    createContext: ({ req, info }) =>
      contextFactory({
        authorization:
          req.headers.authorization ??
          (info.type === "subscription" && info.connectionParams?.token
            ? `Bearer ${info.connectionParams.token}`
            : undefined),
      }),
    onError: ({ error, path }) => logServerError({ error, path, status: getHTTPStatusCodeFromError(error) }),
  });
  const adminDir = deps.adminDistDir === undefined ? DEFAULT_ADMIN_DIST : deps.adminDistDir;
  const serveStatic = adminDir && existsSync(adminDir) ? createStaticHandler(adminDir) : null;

  let closing = false;
  let listeningUrl: string | undefined;
  const inFlight = new Set<http.ServerResponse>();

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = process.hrtime.bigint();
    const pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    const method = req.method ?? "GET";
    inFlight.add(res);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    if (closing) res.setHeader("connection", "close");
    res.on("close", () => {
      inFlight.delete(res);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(pathname, restTemplates.get(req));
      metrics.observeRequest(route, method, res.statusCode, seconds);
      logger.debug(
        { method, route, status: res.statusCode, ms: Math.round(seconds * 10_000) / 10 },
        "request",
      );
    });

    if (pathname === "/healthz") return sendJson(res, 200, { status: "ok" });
    if (pathname === "/readyz") {
      try {
        await deps.database.ping();
        return sendJson(res, closing ? 503 : 200, { status: closing ? "shutting down" : "ready" });
      } catch {
        return sendJson(res, 503, { status: "database unreachable" });
      }
    }
    if (pathname === "/metrics") {
      const verdict = await guardMetrics(req);
      if (!verdict.allowed) {
        if (verdict.status === 401) res.setHeader("www-authenticate", 'Bearer realm="proxyscale-metrics"');
        return sendJson(res, verdict.status, {
          code: verdict.status === 401 ? "UNAUTHORIZED" : "FORBIDDEN",
          message: verdict.message,
          httpStatus: verdict.status,
        });
      }
      const body = await metrics.registry.metrics();
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(body);
      return;
    }
    if (pathname === "/trpc" || pathname.startsWith("/trpc/")) {
      const url = new URL(req.url ?? "/", "http://localhost");
      try {
        await prepareTrpcRequest(req, url, {
          maxBodyBytes: deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
          timeoutMs: requestTimeoutMs,
        });
      } catch (error) {
        if (!(error instanceof TRPCError)) throw error;
        return sendTrpcError(res, error, pathname, url);
      }
      return trpc(req, res);
    }
    if (pathname === "/api" || pathname.startsWith("/api/")) return rest(req, res);
    if (serveStatic && (method === "GET" || method === "HEAD") && (await serveStatic(req, res, pathname)))
      return;
    sendJson(res, 404, { code: "NOT_FOUND", message: `no route ${method} ${pathname}`, httpStatus: 404 });
  };

  const httpServer = http.createServer(
    {
      // Node's own deadlines are the backstop: headers that trickle in (answered 408 by Node), and bodies nobody
      // reads. A body the API reads is timed by its reader, which answers 408 in JSON a little before these.
      headersTimeout: requestTimeoutMs,
      requestTimeout: requestTimeoutMs + 1_000,
      connectionsCheckingInterval: Math.min(1_000, Math.max(100, requestTimeoutMs / 4)),
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        logger.error({ err: error }, "unhandled request error");
        if (!res.headersSent)
          sendJson(res, 500, { code: "INTERNAL_SERVER_ERROR", message: "internal error", httpStatus: 500 });
        else res.destroy();
      });
    },
  );
  httpServer.keepAliveTimeout = 5_000;

  return {
    httpServer,
    metrics,
    live,
    async listen(port, host = "127.0.0.1") {
      await live.start();
      return new Promise((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(port, host, () => {
          httpServer.off("error", reject);
          const address = httpServer.address() as AddressInfo;
          const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
          listeningUrl = `http://${shownHost === "0.0.0.0" ? "localhost" : shownHost}:${address.port}`;
          resolve({ url: listeningUrl, port: address.port });
        });
      });
    },
    async close() {
      if (closing) return;
      closing = true;
      contextFactory.close();
      // Open subscriptions end first: they are requests that never finish on their own.
      await live.close();
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => httpServer.closeAllConnections(), deps.shutdownGraceMs ?? 10_000);
        // Keep-alive connections whose request finishes after close() started are closed as they go idle.
        const sweep = setInterval(() => httpServer.closeIdleConnections(), 25);
        httpServer.close(() => {
          clearTimeout(force);
          clearInterval(sweep);
          resolve();
        });
        httpServer.closeIdleConnections();
      }).then(() => simulations.close());
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

/** A request refused before tRPC's handler ran, answered as tRPC would (one error per call of a batch). */
function sendTrpcError(res: http.ServerResponse, error: TRPCError, pathname: string, url: URL) {
  const paths = pathname.slice("/trpc/".length).split(",");
  const shapes = paths.map((path) => ({
    error: getErrorShape({
      config: appRouter._def._config,
      error,
      type: "unknown",
      path: TRPC_PROCEDURES.has(path) ? path : undefined,
      input: undefined,
      ctx: undefined,
    }),
  }));
  const status = getHTTPStatusCodeFromError(error);
  if (status === 408) res.setHeader("connection", "close");
  sendJson(res, status, url.searchParams.get("batch") ? shapes : shapes[0]);
}
