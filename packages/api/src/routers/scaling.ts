import {
  DEFAULT_OVERLAY_HOURS_AHEAD,
  DEFAULT_OVERLAY_HOURS_BACK,
  demandForecastOverlay,
  demandForecastSchema,
  MAX_OVERLAY_HOURS_AHEAD,
  MAX_OVERLAY_HOURS_BACK,
  PREDICTIVE_HISTORY_DAYS,
  scalingCompletionSchema,
  validateReplicaRequest,
} from "@proxyscale/core";
import {
  completeScalingEvent,
  createScalingEvent,
  DEFAULT_SUMMARY_HOURS,
  findActiveScalingEvent,
  getMonthSpend,
  getScalingEvent,
  getScalingSummary,
  listDecisions,
  listScalingEvents,
  loadDemandHistories,
  MAX_SUMMARY_HOURS,
  scalingEventRecordSchema,
  scalingSummaryWithSpendSchema,
} from "@proxyscale/db";
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import {
  type AuthedContext,
  assertWithinOwnerTier,
  effectivePolicyOf,
  loadVisibleProxy,
  ownerScope,
} from "../access.ts";
import { inputError, notFound } from "../errors.ts";
import {
  decisionPageSchema,
  documentedOutput,
  evaluationSchema,
  scalingEventPageSchema,
} from "../outputs.ts";
import {
  cursorSchema,
  evaluateOptionsSchema,
  eventIdSchema,
  executeScalingSchema,
  limitSchema,
  proxyIdSchema,
} from "../schemas.ts";
import { operatorProcedure, viewerProcedure } from "../trpc.ts";
import { simulateProcedures } from "./simulate.ts";

const TAGS = ["scaling"];

const wholeHours = (max: number) =>
  z
    .number()
    .int({ message: "must be a whole number of hours" })
    .min(1, { message: "must be at least 1" })
    .max(max, { message: `must be at most ${max}` });

function triggeredByFor(ctx: AuthedContext): "manual" | "admin" {
  return ctx.user.role === "admin" ? "admin" : "manual";
}

export const scalingRouter = {
  ...simulateProcedures,

  evaluate: operatorProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/evaluate/{proxyId}",
        tags: TAGS,
        summary:
          "Run the engine on the proxy's current state; returns the decision with its explanation and stores it",
      },
    })
    .input(evaluateOptionsSchema.extend({ proxyId: proxyIdSchema }))
    .output(documentedOutput(evaluationSchema))
    .mutation(({ ctx, input }) =>
      ctx.evaluate({
        proxyId: input.proxyId,
        ownerId: ownerScope(ctx),
        currentReplicas: input.currentReplicas,
        triggeredBy: triggeredByFor(ctx),
      }),
    ),

  execute: operatorProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/execute/{proxyId}",
        tags: TAGS,
        summary: "Start a manual scale: creates a pending event and hands it to the executor (202 Accepted)",
      },
      successStatus: 202,
    })
    .input(executeScalingSchema.extend({ proxyId: proxyIdSchema }))
    .output(scalingEventRecordSchema)
    .mutation(async ({ ctx, input }) => {
      const triggeredBy = input.triggeredBy ?? triggeredByFor(ctx);
      if (triggeredBy === "admin" && ctx.user.role !== "admin") {
        throw new TRPCError({
          code: "FORBIDDEN",
          message: `triggeredBy admin requires role admin; your token has role ${ctx.user.role}`,
        });
      }
      const proxy = await loadVisibleProxy(ctx, input.proxyId);
      assertWithinOwnerTier(proxy, input.newReplicaCount);
      const { policy } = await effectivePolicyOf(ctx, input.proxyId);
      const allowed = validateReplicaRequest(policy, input.newReplicaCount);
      if (!allowed.success) {
        throw inputError(
          "newReplicaCount",
          allowed.error.issues[0]?.message ?? "is not allowed",
          input.newReplicaCount,
        );
      }
      if (input.newReplicaCount === proxy.currentReplicas) {
        throw new TRPCError({
          code: "CONFLICT",
          message: `newReplicaCount: the proxy already runs ${proxy.currentReplicas} replicas`,
        });
      }
      const active = await findActiveScalingEvent(ctx.db, { proxyId: input.proxyId });
      if (active) {
        throw new TRPCError({
          code: "CONFLICT",
          message: `scaling event ${active.id} is still ${active.status}; complete or cancel it first`,
        });
      }
      const event = await createScalingEvent(ctx.db, {
        proxyId: input.proxyId,
        eventType: input.newReplicaCount > proxy.currentReplicas ? "scale_up" : "scale_down",
        previousReplicas: proxy.currentReplicas,
        newReplicas: input.newReplicaCount,
        triggeredBy,
        reason: input.reason,
        actorId: ctx.user.sub,
      });
      ctx.telemetry.scalingEventChanged?.(event);
      ctx.executor.submit(event);
      return event;
    }),

  complete: operatorProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/complete",
        tags: TAGS,
        summary: "Finish a scaling event (for external actuators): completed, failed or cancelled",
      },
    })
    .input(scalingCompletionSchema.extend({ eventId: eventIdSchema }))
    .output(scalingEventRecordSchema)
    .mutation(async ({ ctx, input }) => {
      const existing = await getScalingEvent(ctx.db, { id: input.eventId });
      if (!existing) throw notFound("scaling event", input.eventId);
      await loadVisibleProxy(ctx, existing.proxyId).catch(() => {
        throw notFound("scaling event", input.eventId);
      });
      const event = await completeScalingEvent(ctx.db, {
        eventId: input.eventId,
        status: input.status,
        error: input.error,
        observedReplicas: input.observedReplicas,
      });
      ctx.telemetry.scalingEventChanged?.(event);
      return event;
    }),

  events: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/events/{proxyId}",
        tags: TAGS,
        summary: "The proxy's scaling events, newest first (limit default 50, cursor for the next page)",
      },
    })
    .input(
      z.strictObject({
        proxyId: proxyIdSchema,
        limit: limitSchema.default(50),
        cursor: cursorSchema.optional(),
      }),
    )
    .output(scalingEventPageSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const page = await listScalingEvents(ctx.db, {
        proxyId: input.proxyId,
        limit: input.limit,
        cursor: input.cursor,
      });
      return { items: page.items, nextCursor: page.nextCursor ?? null };
    }),

  summary: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/summary/{proxyId}",
        tags: TAGS,
        summary: `Events, load and replica statistics and the load trend over the last hoursBack hours (default ${DEFAULT_SUMMARY_HOURS})`,
      },
    })
    .input(
      z.strictObject({
        proxyId: proxyIdSchema,
        hoursBack: z
          .number()
          .int({ message: "must be a whole number of hours" })
          .min(1, { message: "must be at least 1" })
          .max(MAX_SUMMARY_HOURS, {
            message: `must be at most ${MAX_SUMMARY_HOURS} (${MAX_SUMMARY_HOURS / 24} days)`,
          })
          .default(DEFAULT_SUMMARY_HOURS),
      }),
    )
    .output(scalingSummaryWithSpendSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const now = ctx.clock();
      const [summary, spend] = await Promise.all([
        getScalingSummary(ctx.db, { proxyId: input.proxyId, hoursBack: input.hoursBack, now }),
        getMonthSpend(ctx.db, { proxyId: input.proxyId, now }),
      ]);
      return { ...summary, spend };
    }),

  forecast: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/forecast/{proxyId}",
        tags: TAGS,
        summary: `Actual vs forecast fleet request rate per 15-minute bucket, hoursBack (default ${DEFAULT_OVERLAY_HOURS_BACK}) into the past and hoursAhead (default ${DEFAULT_OVERLAY_HOURS_AHEAD}) into the future, from the predictive strategy's fit on the stored rollups; unavailableReason under a day of history`,
      },
    })
    .input(
      z.strictObject({
        proxyId: proxyIdSchema,
        hoursBack: wholeHours(MAX_OVERLAY_HOURS_BACK).default(DEFAULT_OVERLAY_HOURS_BACK),
        hoursAhead: wholeHours(MAX_OVERLAY_HOURS_AHEAD).default(DEFAULT_OVERLAY_HOURS_AHEAD),
      }),
    )
    .output(demandForecastSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const now = ctx.clock();
      const histories = await loadDemandHistories(ctx.db, {
        proxyIds: [input.proxyId],
        now,
        days: PREDICTIVE_HISTORY_DAYS,
      });
      return demandForecastOverlay(histories.get(input.proxyId) ?? { perMinute: [], endsAt: now }, {
        now,
        hoursBack: input.hoursBack,
        hoursAhead: input.hoursAhead,
      });
    }),

  decisions: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/decisions/{proxyId}",
        tags: TAGS,
        summary: "Stored decisions with their explanations, newest first",
      },
    })
    .input(
      z.strictObject({
        proxyId: proxyIdSchema,
        limit: limitSchema.default(50),
        cursor: cursorSchema.optional(),
      }),
    )
    .output(decisionPageSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      return listDecisions(ctx.db, { proxyId: input.proxyId, limit: input.limit, cursor: input.cursor });
    }),
};
