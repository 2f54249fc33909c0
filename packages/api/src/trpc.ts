import { type Role, roleAtLeast } from "@proxyscale/core";
import { initTRPC, TRPCError } from "@trpc/server";
import type { OpenApiMeta } from "trpc-to-openapi";
import { ZodError } from "zod";
import { AuthenticationError } from "./auth.ts";
import type { Context } from "./context.ts";
import { describeIssues, mapDomainError, toApiIssues } from "./errors.ts";

/**
 * Procedure metadata: trpc-to-openapi's `openapi` block, plus the REST success status
 * (a number, or a function of the output for "201 created / 200 updated").
 */
export type ApiMeta = OpenApiMeta & {
  successStatus?: number | ((output: unknown) => number);
};

export const INTERNAL_ERROR_MESSAGE = "internal server error; the server log has the details";

const t = initTRPC
  .context<Context>()
  .meta<ApiMeta>()
  .create({
    isDev: false,
    // live.onChange's SSE stream: a ping every 15 s keeps an idle stream open through proxies that cut silent
    // connections, and tells the client to reconnect after 40 s without one (a dead connection).
    sse: { ping: { enabled: true, intervalMs: 15_000 }, client: { reconnectAfterInactivityMs: 40_000 } },
    /** The one error formatter: tRPC and REST responses both carry `data.zodIssues` for invalid input. */
    errorFormatter({ shape, error }) {
      const zodIssues = error.cause instanceof ZodError ? toApiIssues(error.cause) : undefined;
      // An internal error's message can quote SQL and its parameters: clients get a generic one, the log the real one.
      const internal = error.code === "INTERNAL_SERVER_ERROR";
      return {
        ...shape,
        // tRPC's own input errors carry zod's JSON dump as message; a readable list replaces it.
        message: internal
          ? INTERNAL_ERROR_MESSAGE
          : zodIssues && error.message === error.cause?.message
            ? describeIssues(zodIssues)
            : shape.message,
        data: { ...shape.data, zodIssues },
      };
    },
  });

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Every procedure maps db errors (not found, conflict, unreachable) to their codes. */
const mapErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok) return { ...result, error: mapDomainError(result.error) };
  return result;
});

export const publicProcedure = t.procedure.use(mapErrors);

/**
 * A valid bearer token, within the user's rate limit, with at least the `required` role: one middleware, and the
 * only one that changes the context (tRPC copies the context for every middleware that passes one on).
 */
function authenticated(required: Role) {
  return publicProcedure.use(async ({ ctx, next, getRawInput }) => {
    const header = ctx.authorization;
    if (!header)
      throw new TRPCError({ code: "UNAUTHORIZED", message: "missing Authorization: Bearer <token>" });
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match)
      throw new TRPCError({ code: "UNAUTHORIZED", message: "Authorization header must be Bearer <token>" });
    let user: NonNullable<Context["user"]>;
    try {
      user = await ctx.verifyToken(match[1]!);
    } catch (error) {
      if (error instanceof AuthenticationError)
        throw new TRPCError({ code: "UNAUTHORIZED", message: error.message });
      throw error;
    }
    const verdict = ctx.rateLimiter.take(user.sub, user.tier);
    if (!verdict.allowed) {
      throw new TRPCError({
        code: "TOO_MANY_REQUESTS",
        message: `rate limit: tier ${user.tier} allows ${verdict.limitPerMinute} requests per minute; retry in ${verdict.retryAfterSeconds} s`,
      });
    }
    if (!roleAtLeast(user.role, required)) {
      throw new TRPCError({
        code: "FORBIDDEN",
        message: `requires role ${required} or above; your token has role ${user.role}`,
      });
    }
    // Heavy work (a batch's samples) is admitted per user (FairShare), before its input is parsed.
    const raw = (await getRawInput()) as { samples?: unknown } | undefined;
    const weight = Array.isArray(raw?.samples) ? raw.samples.length : 1;
    return ctx.heavyWork.run(user.sub, weight, () => next({ ctx: { user } }));
  });
}

export const protectedProcedure = authenticated("viewer");
export const viewerProcedure = protectedProcedure;
export const operatorProcedure = authenticated("operator");
export const adminProcedure = authenticated("admin");
