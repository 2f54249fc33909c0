import type { ApiIssue, AppRouter } from "@proxyscale/api";
import {
  createTRPCClient,
  httpBatchLink,
  isTRPCClientError,
  type TRPCClient,
  TRPCClientError,
} from "@trpc/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";

/** Every procedure's input, by router and procedure: `RouterInputs["scaling"]["execute"]`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Every procedure's output as it arrives over JSON (dates are ISO strings): `RouterOutputs["proxies"]["get"]`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;

export type ProxyScaleClient = TRPCClient<AppRouter>;
export type ProxyScaleClientError = TRPCClientError<AppRouter>;

export type ProxyOutput = RouterOutputs["proxies"]["get"];
export type SourceHealthOutput = RouterOutputs["proxies"]["sourceHealth"];
export type PolicyOutput = RouterOutputs["policies"]["get"];
export type EvaluationOutput = RouterOutputs["scaling"]["evaluate"];
export type ScalingEventOutput = RouterOutputs["scaling"]["execute"];
export type SummaryOutput = RouterOutputs["scaling"]["summary"];
/** `client.scaling.forecast.query({ proxyId })`: actual vs forecast fleet request rate per 15-minute bucket. */
export type ForecastOutput = RouterOutputs["scaling"]["forecast"];
export type LatestSampleOutput = RouterOutputs["metrics"]["latest"]["samples"][number];
/** `client.scaling.simulate.mutate(input)`: a trace through named policies, HPA's defaults and the oracle. */
export type SimulateInput = RouterInputs["scaling"]["simulate"];
export type SimulationOutput = RouterOutputs["scaling"]["simulate"];
/** `client.scaling.simulateHistory.mutate(input)`: a proxy's stored per-minute history over [from, to). */
export type SimulateHistoryInput = RouterInputs["scaling"]["simulateHistory"];
export type SimulateHistoryOutput = RouterOutputs["scaling"]["simulateHistory"];

export interface ProxyScaleClientOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080; procedures are called under `${url}/trpc`. */
  url: string;
  /** A bearer JWT, or a function returning the current one (read before every request, for rotating tokens). */
  token: string | (() => string | Promise<string>);
  /** A fetch implementation; default the global fetch. */
  fetch?: typeof fetch;
}

/**
 * The typed tRPC client. Calls made in the same tick are batched into one HTTP request; inputs and outputs
 * are inferred from the server's router, so a changed procedure is a type error here.
 */
export function createProxyScaleClient(options: ProxyScaleClientOptions): ProxyScaleClient {
  const token = options.token;
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: `${options.url.replace(/\/+$/, "")}/trpc`,
        async headers() {
          const bearer = typeof token === "function" ? await token() : token;
          return { authorization: `Bearer ${bearer}` };
        },
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    ],
  });
}

/** The largest page `metrics.latest` serves. */
export const MAX_LATEST_PAGE = 500;

/**
 * Every instance's latest sample of a proxy, ordered by instance id: `metrics.latest` serves them a page at a
 * time (`pageSize`, default and at most 500), and this follows `nextCursor` to the last page.
 */
export async function allLatestSamples(
  client: ProxyScaleClient,
  proxyId: string,
  options: { pageSize?: number } = {},
): Promise<LatestSampleOutput[]> {
  const samples: LatestSampleOutput[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.metrics.latest.query({
      proxyId,
      limit: options.pageSize ?? MAX_LATEST_PAGE,
      ...(cursor ? { cursor } : {}),
    });
    samples.push(...page.samples);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return samples;
}

export function isProxyScaleError(error: unknown): error is ProxyScaleClientError {
  return isTRPCClientError<AppRouter>(error);
}

/** The server's zod issues of a rejected input (each naming its field), or [] for any other error. */
export function issuesOf(error: unknown): ApiIssue[] {
  return (isProxyScaleError(error) && error.data?.zodIssues) || [];
}

/** The HTTP status the server answered with, when there was an answer. */
export function statusOf(error: unknown): number | undefined {
  return isProxyScaleError(error) ? error.data?.httpStatus : undefined;
}

export type { ApiIssue };
export { TRPCClientError };
