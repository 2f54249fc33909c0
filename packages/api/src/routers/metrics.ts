import { computeLoadScore, type LoadMetrics, loadMetricsSchema, type MetricSample } from "@proxyscale/core";
import {
  insertSamples,
  type LatestSample,
  latestSamples,
  MAX_BATCH_ROWS,
  MAX_RANGE_POINTS,
  metricsRange,
  setObservedReplicas,
} from "@proxyscale/db";
import { z } from "zod";
import { type AuthedContext, effectivePolicyOf, loadVisibleProxy, recordOutput } from "../access.ts";
import { proxyIdSchema } from "../schemas.ts";
import { operatorProcedure, viewerProcedure } from "../trpc.ts";

/** The seed-era batch limit, equal to the db's one-statement batch. */
export const MAX_BATCH_SAMPLES = MAX_BATCH_ROWS;
const TAGS = ["metrics"];

function toSample(metrics: LoadMetrics, receivedAt: number): MetricSample {
  const at =
    metrics.recordedAt === undefined
      ? receivedAt
      : typeof metrics.recordedAt === "number"
        ? metrics.recordedAt
        : Date.parse(metrics.recordedAt);
  return {
    instanceId: metrics.instanceId,
    at,
    cpuPercent: metrics.cpuPercent,
    memoryPercent: metrics.memoryPercent,
    requestRate: metrics.requestRate,
    avgLatencyMs: metrics.avgLatencyMs,
    errorRatePercent: metrics.errorRatePercent,
    custom: metrics.custom,
  };
}

export interface RecordedSample {
  sample: MetricSample;
  loadScore: number;
}

/** Scores and stores samples of one proxy in one statement; the latest reported replica count updates the proxy. */
async function recordSamples(
  ctx: AuthedContext,
  proxyId: string,
  reports: LoadMetrics[],
): Promise<RecordedSample[]> {
  await loadVisibleProxy(ctx, proxyId);
  const { policy } = await effectivePolicyOf(ctx, proxyId);
  const receivedAt = ctx.clock();
  const rows = reports.map((metrics) => ({
    proxyId,
    sample: toSample(metrics, receivedAt),
    loadScore: computeLoadScore(metrics, policy),
    replicas: metrics.replicas,
    unhealthyReplicas: metrics.unhealthyReplicas,
  }));
  await insertSamples(ctx.db, rows);
  const reportedReplicas = reports.findLast((metrics) => metrics.replicas !== undefined)?.replicas;
  if (reportedReplicas !== undefined) {
    await setObservedReplicas(ctx.db, { id: proxyId, currentReplicas: reportedReplicas });
  }
  const last = rows.at(-1);
  if (last) ctx.telemetry.sampleRecorded?.(proxyId, last.loadScore);
  ctx.onMetricsRecorded([proxyId]);
  return rows.map((row) => ({ sample: row.sample, loadScore: row.loadScore }));
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
    .output(recordOutput<RecordedSample & { proxyId: string }>("The recorded sample and its loadScore"))
    .mutation(async ({ ctx, input }) => {
      const { proxyId, ...metrics } = input;
      const [recorded] = await recordSamples(ctx, proxyId, [metrics]);
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
    .output(
      recordOutput<{ proxyId: string; recorded: number; loadScores: number[] }>(
        "How many samples were stored",
      ),
    )
    .mutation(async ({ ctx, input }) => {
      const recorded = await recordSamples(ctx, input.proxyId, input.samples);
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
        summary: "The latest sample of each instance",
      },
    })
    .input(z.strictObject({ proxyId: proxyIdSchema }))
    .output(
      recordOutput<{ proxyId: string; samples: LatestSample[] }>("The latest samples with their loadScore"),
    )
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const latest = await latestSamples(ctx.db, { proxyIds: [input.proxyId] });
      return { proxyId: input.proxyId, samples: latest.get(input.proxyId) ?? [] };
    }),

  range: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/metrics/{proxyId}/range",
        tags: TAGS,
        summary: "Samples between from and to (epoch ms), averaged into at most `points` buckets",
      },
    })
    .input(
      z
        .strictObject({
          proxyId: proxyIdSchema,
          from: z.number().int().min(0, { message: "must be epoch milliseconds" }).optional(),
          to: z.number().int().min(0, { message: "must be epoch milliseconds" }).optional(),
          points: z
            .number()
            .int()
            .min(1, { message: "must be at least 1" })
            .max(MAX_RANGE_POINTS, { message: `must be at most ${MAX_RANGE_POINTS}` })
            .default(120),
        })
        .refine((range) => range.from === undefined || range.to === undefined || range.from < range.to, {
          message: "must be before to",
          path: ["from"],
        }),
    )
    .output(
      recordOutput<{
        proxyId: string;
        from: number;
        to: number;
        points: Awaited<ReturnType<typeof metricsRange>>;
      }>("The downsampled series"),
    )
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const to = input.to ?? ctx.clock();
      const from = input.from ?? to - 3_600_000;
      const points = await metricsRange(ctx.db, { proxyId: input.proxyId, from, to, points: input.points });
      return { proxyId: input.proxyId, from, to, points };
    }),
};
