import {
  futureSampleRefusal,
  type LoadMetrics,
  loadMetricsSchema,
  reportedAtMs,
  storableEpochMs,
} from "@proxyscale/core";
import {
  DEFAULT_PAGE_SIZE,
  latestSamplesPage,
  MAX_BATCH_ROWS,
  MAX_RANGE_POINTS,
  metricsRange,
} from "@proxyscale/db";
import { z } from "zod";
import { type AuthedContext, loadVisibleProxy, ownerScope } from "../access.ts";
import { inputError } from "../errors.ts";
import {
  latestSamplesSchema,
  metricsRangeSchema,
  recordedBatchSchema,
  recordedPushSchema,
} from "../outputs.ts";
import { cursorSchema, limitSchema, metricsRangeFieldsSchema, proxyIdSchema } from "../schemas.ts";
import { operatorProcedure, viewerProcedure } from "../trpc.ts";

/** The seed-era batch limit, equal to the db's one-statement batch. */
export const MAX_BATCH_SAMPLES = MAX_BATCH_ROWS;
const TAGS = ["metrics"];

/**
 * Stores one proxy's samples (with the pushes arriving at the same time) and tells the control loop. A sample
 * further ahead of the server's clock than the skew allowance is refused first (400 naming its field, `fieldOf`).
 */
function recordSamples(
  ctx: AuthedContext,
  proxyId: string,
  reports: LoadMetrics[],
  fieldOf: (index: number) => string,
) {
  const now = ctx.clock();
  reports.forEach((report, index) => {
    if (report.recordedAt === undefined) return;
    const refusal = futureSampleRefusal(reportedAtMs(report.recordedAt, now), now, ctx.maxClockSkewSeconds);
    if (refusal) throw inputError(fieldOf(index), refusal, report.recordedAt);
  });
  return ctx.recordSamples({ proxyId, ownerId: ownerScope(ctx), reports });
}

export const metricsRouter = {
  record: operatorProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/metrics/{proxyId}",
        tags: TAGS,
        summary: "Record one load sample; returns it with its composite loadScore",
      },
      successStatus: 201,
    })
    .input(loadMetricsSchema.extend({ proxyId: proxyIdSchema }))
    .output(recordedPushSchema)
    .mutation(async ({ ctx, input }) => {
      const { proxyId, ...metrics } = input;
      const [recorded] = await recordSamples(ctx, proxyId, [metrics], () => "recordedAt");
      return { proxyId, ...recorded! };
    }),

  recordBatch: operatorProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/metrics/{proxyId}/batch",
        tags: TAGS,
        summary: `Record up to ${MAX_BATCH_SAMPLES} samples in one statement`,
      },
      successStatus: 201,
    })
    .input(
      z.strictObject({
        proxyId: proxyIdSchema,
        samples: z
          .array(loadMetricsSchema)
          .min(1, { message: "must hold at least 1 sample" })
          .max(MAX_BATCH_SAMPLES, { message: `must hold at most ${MAX_BATCH_SAMPLES} samples` }),
      }),
    )
    .output(recordedBatchSchema)
    .mutation(async ({ ctx, input }) => {
      const recorded = await recordSamples(
        ctx,
        input.proxyId,
        input.samples,
        (index) => `samples.${index}.recordedAt`,
      );
      return {
        proxyId: input.proxyId,
        recorded: recorded.length,
        loadScores: recorded.map((row) => row.loadScore),
      };
    }),

  latest: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/metrics/{proxyId}",
        tags: TAGS,
        summary: `The latest sample of each instance, a page at a time (by instance id; limit default ${DEFAULT_PAGE_SIZE}, at most 500)`,
      },
    })
    .input(
      z.strictObject({
        proxyId: proxyIdSchema,
        limit: limitSchema.default(DEFAULT_PAGE_SIZE),
        cursor: cursorSchema.optional(),
      }),
    )
    .output(latestSamplesSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const page = await latestSamplesPage(ctx.db, {
        proxyId: input.proxyId,
        limit: input.limit,
        cursor: input.cursor,
      });
      return { proxyId: input.proxyId, samples: page.items, nextCursor: page.nextCursor };
    }),

  range: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/metrics/{proxyId}/range",
        tags: TAGS,
        summary:
          "Samples between from and to (epoch ms), averaged into at most `points` intervals, one array per field " +
          "(only those named by `fields`, repeated in a query string: `fields=cpuPercent&fields=loadScore`)",
      },
    })
    .input(
      z
        .strictObject({
          proxyId: proxyIdSchema,
          from: storableEpochMs().optional(),
          to: storableEpochMs().optional(),
          points: z
            .number()
            .int()
            .min(1, { message: "must be at least 1" })
            .max(MAX_RANGE_POINTS, { message: `must be at most ${MAX_RANGE_POINTS}` })
            .default(120),
          fields: metricsRangeFieldsSchema.optional(),
        })
        .refine((range) => range.from === undefined || range.to === undefined || range.from < range.to, {
          message: "must be before to",
          path: ["from"],
        }),
    )
    .output(metricsRangeSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const to = input.to ?? ctx.clock();
      const from = input.from ?? to - 3_600_000;
      const columns = await metricsRange(ctx.db, {
        proxyId: input.proxyId,
        from,
        to,
        points: input.points,
        fields: input.fields,
      });
      return { proxyId: input.proxyId, from, to, columns };
    }),
};
