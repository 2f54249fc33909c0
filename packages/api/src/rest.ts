import type { IncomingMessage, ServerResponse } from "node:http";
import { type AnyProcedure, getErrorShape, TRPCError } from "@trpc/server";
import { getHTTPStatusCodeFromError } from "@trpc/server/http";
import { ZodRealError, type z } from "zod";
import { type BodyLimits, readJsonBodyText } from "./body.ts";
import type { Context, ContextFactory } from "./context.ts";
import { DOCS_PAGE_CSP, renderDocsPage } from "./docs-page.ts";
import type { restErrorBodySchema } from "./errors.ts";
import { createOpenApiDocument } from "./openapi.ts";
import { type AppRouter, appRouter, createCaller } from "./root.ts";
import type { ApiMeta } from "./trpc.ts";

/**
 * The REST face of the router: every procedure with `meta.openapi` is served at `basePath + openapi.path`.
 *
 * Why not trpc-to-openapi's own `createOpenApiHttpHandler`: on every request it sets `_def.coerce = true` on the
 * number fields of the input schema, which are core's shared schemas, so after the first REST call
 * `{"cpuPercent": "50", "memoryPercent": null}` is accepted as 50 and 0 by REST and by /trpc alike.
 * This adapter reads the same metadata, coerces only query-string values, and is the one place for
 * status codes (201/202 from `meta.successStatus`, 413 body limit, 415, 400 on bad JSON, 404/405 routes).
 * trpc-to-openapi still generates the OpenAPI document from the same procedures.
 */

export interface RestHandlerOptions {
  createContext: ContextFactory;
  /** Where the REST paths live. Default "/api". */
  basePath?: string;
  /** Largest accepted request body. Default 4 MiB (a 5,000-sample batch is about 1 MiB). */
  maxBodyBytes?: number;
  /** Longest time a request body may take to arrive; past it, 408 and the connection is closed. Default: none. */
  requestTimeoutMs?: number;
  /**
   * The server's public base URL (PROXYSCALE_PUBLIC_URL, e.g. `https://proxyscale.example.com`); the OpenAPI
   * document's `servers` is it plus the base path. A function is asked on each request (the server passes its
   * configured URL, else the address it listens on). Never taken from the request's Host header. Default:
   * `http://localhost`.
   */
  publicUrl?: string | (() => string | undefined);
  /** Told which route template ("/proxy/scaling/evaluate/{proxyId}") a request matched, for metrics labels. */
  onRoute?: (req: IncomingMessage, template: string) => void;
  /** Called for every error response (the server logs 5xx). */
  onError?: (info: { error: TRPCError; path: string | undefined; status: number }) => void;
}

/** The JSON body of every REST error. `zodIssues` names each invalid field. */
export type RestErrorBody = z.output<typeof restErrorBodySchema>;

export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;

interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  procedurePath: string;
  procedure: AnyProcedure;
  meta: ApiMeta;
}

type RestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function buildRoutes(router: AppRouter): Route[] {
  const routes: Route[] = [];
  for (const [procedurePath, procedure] of Object.entries(
    router._def.procedures as unknown as Record<string, AnyProcedure>,
  )) {
    const meta = procedure._def.meta as ApiMeta | undefined;
    if (!meta?.openapi) continue;
    const source = meta.openapi.path.replace(/\{(\w+)\}/g, (_, name: string) => `(?<${name}>[^/]+)`);
    routes.push({
      method: meta.openapi.method,
      template: meta.openapi.path,
      pattern: new RegExp(`^${source}/?$`),
      procedurePath,
      procedure,
      meta,
    });
  }
  // Literal paths before templated ones, so /policies/presets never reads as a path parameter.
  return routes.sort(
    (a, b) => Number(a.pattern.source.includes("(?<")) - Number(b.pattern.source.includes("(?<")),
  );
}

/**
 * Query strings carry text; numbers and booleans are converted only where the input schema wants them. An array
 * is its key repeated (`fields=a&fields=b`, OpenAPI's default form style), one occurrence an array of one.
 */
function coerceQuery(procedure: AnyProcedure, query: URLSearchParams): Record<string, unknown> {
  const inputSchema = (procedure._def.inputs as unknown[])[0] as
    | { shape?: Record<string, unknown> }
    | undefined;
  const shape = inputSchema?.shape ?? {};
  const result: Record<string, unknown> = {};
  for (const [key, value] of query) {
    const kind = fieldKind(shape[key]);
    if (kind === "array") result[key] = query.getAll(key);
    else if (kind === "number" && /^-?\d+(\.\d+)?$/.test(value)) result[key] = Number(value);
    else if (kind === "boolean" && (value === "true" || value === "false")) result[key] = value === "true";
    else result[key] = value;
  }
  return result;
}

function fieldKind(schema: unknown): string | undefined {
  let current = schema as { _zod?: { def: { type: string; innerType?: unknown } } } | undefined;
  while (current?._zod && ["optional", "default", "nullable", "prefault"].includes(current._zod.def.type)) {
    current = current._zod.def.innerType as typeof current;
  }
  return current?._zod?.def.type;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function successStatus(meta: ApiMeta, output: unknown): number {
  if (typeof meta.successStatus === "function") return meta.successStatus(output);
  return meta.successStatus ?? 200;
}

export function createRestHandler(options: RestHandlerOptions): RestHandler {
  const basePath = options.basePath ?? "/api";
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const routes = buildRoutes(appRouter);
  const documents = new Map<string, ReturnType<typeof createOpenApiDocument>>();
  const documentFor = (baseUrl: string) => {
    let document = documents.get(baseUrl);
    if (!document) {
      document = createOpenApiDocument(baseUrl);
      documents.set(baseUrl, document);
    }
    return document;
  };

  const apiBaseUrl = () => {
    const configured = typeof options.publicUrl === "function" ? options.publicUrl() : options.publicUrl;
    return `${(configured ?? "http://localhost").replace(/\/+$/, "")}${basePath}`;
  };

  const sendError = (
    res: ServerResponse,
    error: TRPCError,
    route: Route | undefined,
    input: unknown,
    ctx?: Context,
  ) => {
    const shape = getErrorShape({
      config: appRouter._def._config,
      error,
      type: route?.procedure._def.type ?? "unknown",
      path: route?.procedurePath,
      input,
      ctx,
    });
    const status = getHTTPStatusCodeFromError(error);
    const body: RestErrorBody = {
      code: error.code,
      message: shape.message,
      httpStatus: status,
      ...(shape.data.zodIssues ? { zodIssues: shape.data.zodIssues } : {}),
    };
    options.onError?.({ error, path: route?.procedurePath, status });
    // The rest of a body that timed out is never read: the connection cannot carry another request.
    sendJson(res, status, body, status === 408 ? { connection: "close" } : {});
  };

  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname.slice(basePath.length) || "/";
    const method = req.method ?? "GET";

    if (method === "GET" && (path === "/openapi.json" || path === "/docs" || path === "/docs/")) {
      options.onRoute?.(req, path.replace(/\/$/, ""));
    }
    if (method === "GET" && path === "/openapi.json") {
      sendJson(res, 200, documentFor(apiBaseUrl()));
      return;
    }
    if (method === "GET" && (path === "/docs" || path === "/docs/")) {
      const html = renderDocsPage(documentFor(apiBaseUrl()));
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-length": Buffer.byteLength(html),
        "content-security-policy": DOCS_PAGE_CSP,
      });
      res.end(html);
      return;
    }

    const matching = routes.filter((candidate) => candidate.pattern.test(path));
    const route = matching.find((candidate) => candidate.method === method);
    if (!route) {
      if (matching.length > 0) {
        const allowed = [...new Set(matching.map((candidate) => candidate.method))].join(", ");
        res.setHeader("allow", allowed);
        sendError(
          res,
          new TRPCError({
            code: "METHOD_NOT_SUPPORTED",
            message: `${method} ${url.pathname} is not supported; use ${allowed}`,
          }),
          undefined,
          undefined,
        );
        return;
      }
      sendError(
        res,
        new TRPCError({ code: "NOT_FOUND", message: `no route ${method} ${url.pathname}` }),
        undefined,
        undefined,
      );
      return;
    }

    options.onRoute?.(req, route.template);
    let input: unknown;
    let ctx: Context | undefined;
    try {
      const pathParams = Object.fromEntries(
        Object.entries(route.pattern.exec(path)?.groups ?? {}).map(([key, value]) => [
          key,
          decodePathParameter(key, value),
        ]),
      );
      if (method === "GET" || method === "DELETE") {
        input = { ...coerceQuery(route.procedure, url.searchParams), ...pathParams };
      } else {
        input = {
          ...(await readJsonObject(req, { maxBodyBytes, timeoutMs: options.requestTimeoutMs })),
          ...pathParams,
        };
      }
      ctx = options.createContext({ authorization: req.headers.authorization });
      const caller = createCaller(ctx) as unknown as Record<
        string,
        Record<string, (input: unknown) => Promise<unknown>>
      >;
      const [group, name] = route.procedurePath.split(".") as [string, string];
      const output = await caller[group]![name]!(input);
      sendJson(res, successStatus(route.meta, output), output);
    } catch (cause) {
      const error =
        cause instanceof TRPCError
          ? cause
          : new TRPCError({ code: "INTERNAL_SERVER_ERROR", message: "internal error", cause });
      sendError(res, error, route, input, ctx);
    }
  };
}

/** A path parameter's text, or 400 naming it when it is not valid percent-encoding (`%ZZ`). */
function decodePathParameter(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new TRPCError({
      code: "BAD_REQUEST",
      message: `path parameter ${name} is not valid percent-encoding`,
      cause: new ZodRealError([
        { code: "custom", path: [name], message: "must be valid percent-encoding", input: value },
      ]),
    });
  }
}

/** The body as a JSON object (an empty body is `{}`), or a TRPCError with the status the client deserves. */
async function readJsonObject(req: IncomingMessage, limits: BodyLimits): Promise<Record<string, unknown>> {
  const text = await readJsonBodyText(req, limits);
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TRPCError({
      code: "BAD_REQUEST",
      message: `request body is not valid JSON: ${(error as Error).message}`,
      cause: new ZodRealError([
        { code: "custom", path: [], message: "must be valid JSON", input: undefined },
      ]),
    });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new TRPCError({
      code: "BAD_REQUEST",
      message: "request body must be a JSON object",
      cause: new ZodRealError([
        { code: "custom", path: [], message: "must be a JSON object", input: undefined },
      ]),
    });
  }
  return parsed as Record<string, unknown>;
}
