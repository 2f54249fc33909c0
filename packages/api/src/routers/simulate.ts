import {
  replayRequestSchema,
  simulateRequestSchema,
  simulationResultSchema,
  traceFromRollups,
  traceOfRequest,
} from "@proxyscale/core";
import { loadRollupsForReplay } from "@proxyscale/db";
import { z } from "zod";
import { effectivePolicyOf, loadVisibleProxy } from "../access.ts";
import { inputError } from "../errors.ts";
import { proxyIdSchema } from "../schemas.ts";
import { viewerProcedure } from "../trpc.ts";

const TAGS = ["scaling"];

/** A replay's result also says how much of its window had no rollup (filled by the last known minute). */
export const replayResultSchema = simulationResultSchema.extend({
  proxyId: proxyIdSchema,
  from: z.number(),
  to: z.number(),
  gapMinutes: z.number().int(),
});

/**
 * The what-if simulator (core's runSimulation, through the context's `simulate`: on the server, a worker pool):
 * any authenticated role may run it. The simulation is CPU work, bounded by the request schema (steps,
 * policies) and admitted per user by the procedure middleware's heavyWork FairShare.
 */
export const simulateProcedures = {
  simulate: viewerProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/simulate",
        tags: TAGS,
        summary:
          "Replay a request trace (CSV text or counts) through named policies, HPA's defaults and the oracle; elasticity metrics per row and chart series",
      },
    })
    .input(simulateRequestSchema)
    .output(simulationResultSchema)
    .mutation(({ ctx, input }) => ctx.simulate({ ...input, trace: traceOfRequest(input) })),

  simulateHistory: viewerProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/simulate/{proxyId}",
        tags: TAGS,
        summary:
          "Replay the proxy's stored per-minute history over [from, to) through candidate policies (default: its current policy)",
      },
    })
    .input(replayRequestSchema.safeExtend({ proxyId: proxyIdSchema }))
    .output(replayResultSchema)
    .mutation(async ({ ctx, input }) => {
      const proxy = await loadVisibleProxy(ctx, input.proxyId);
      const policies = input.policies ?? [
        { name: "current", policy: (await effectivePolicyOf(ctx, input.proxyId)).policy },
      ];
      const rollups = await loadRollupsForReplay(ctx.db, input);
      const { trace, gapMinutes, startAt } = traceFromRollups(rollups, {
        from: input.from,
        to: input.to,
        fallbackReplicas: proxy.currentReplicas,
      });
      if (trace.requests.length === 0)
        throw inputError("to", "the window must hold at least one whole minute", input.to);
      const report = await ctx.simulate({
        ...input,
        trace,
        policies,
        startAt,
        initialReplicas: input.initialReplicas ?? proxy.currentReplicas,
      });
      return { ...report, proxyId: input.proxyId, from: input.from, to: input.to, gapMinutes };
    }),
};
