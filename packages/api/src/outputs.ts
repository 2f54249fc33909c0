import {
  decisionSchema,
  metricSampleSchema,
  metricsSourceHealthSchema,
  PRESET_NAMES,
  redactedActuatorConfigSchema,
  redactedMetricsSourceSchema,
  scalingPolicySchema,
} from "@proxyscale/core";
import {
  auditEntrySchema,
  decisionRecordSchema,
  latestSampleSchema,
  metricsColumnsSchema,
  pageSchema,
  policySourceSchema,
  proxyRecordSchema,
  scalingEventRecordSchema,
} from "@proxyscale/db";
import { z } from "zod";
import { apiIssueSchema } from "./errors.ts";
import { environmentSchema, proxyIdSchema } from "./schemas.ts";

/**
 * The procedures' output schemas: the API's own shapes (views, pages, wrappers) around core's and the db's
 * schemas, which define every record once. tRPC checks each response against its schema, trpc-to-openapi
 * writes them into /api/openapi.json, and the SDK's types are inferred from them.
 */

/**
 * `schema` for the OpenAPI document and for the types tRPC infers, without re-parsing every response. For
 * `scaling.evaluate` only: its output is core's decision plus three ids, proven to match by tests instead (core's
 * property test parses every decision against decisionSchema, field for field; openapi.rest.test.ts validates
 * real responses against the document), and parsing it costs about 12–16 µs a response (zod's parseAsync), close
 * to a tenth of the request. A metrics push's output costs about 3 µs to parse and keeps being checked.
 */
export function documentedOutput<Schema extends z.ZodType>(schema: Schema): Schema {
  const documented = schema.clone();
  // tRPC checks an output with its parser's parseAsync (getParseFn): this copy's hands the value through.
  documented.parseAsync = (data: unknown) => Promise.resolve(data as z.output<Schema>);
  return documented;
}

/** A proxy as the API returns it: the actuator's and the metrics source's secrets redacted. */
export const proxyViewSchema = proxyRecordSchema
  .extend({ actuator: redactedActuatorConfigSchema, metricsSource: redactedMetricsSourceSchema })
  .meta({ id: "Proxy" });
export type ProxyView = z.output<typeof proxyViewSchema>;

export const proxyPageSchema = pageSchema(proxyViewSchema);
export const deletedProxySchema = z.object({ proxyId: proxyIdSchema, deleted: z.literal(true) });
/** A scraped proxy's last scrapes, from the server that owns it; null when it has none (not scraped, or not yet). */
export const sourceHealthSchema = z.object({
  proxyId: proxyIdSchema,
  health: metricsSourceHealthSchema.nullable(),
});

/** A stored sample with its composite loadScore. */
export const recordedSampleSchema = z.object({ sample: metricSampleSchema, loadScore: z.number() });
export type RecordedSample = z.output<typeof recordedSampleSchema>;
export const recordedPushSchema = recordedSampleSchema.extend({ proxyId: proxyIdSchema });
export const recordedBatchSchema = z.object({
  proxyId: proxyIdSchema,
  recorded: z.number().int().min(0),
  loadScores: z.array(z.number()),
});
/** One page of a proxy's latest samples (one per instance, by instance id); `nextCursor` asks for the next. */
export const latestSamplesSchema = z.object({
  proxyId: proxyIdSchema,
  samples: z.array(latestSampleSchema),
  nextCursor: z.string().nullable(),
});
export const metricsRangeSchema = z.object({
  proxyId: proxyIdSchema,
  from: z.number().int(),
  to: z.number().int(),
  columns: metricsColumnsSchema,
});

/** The policy that applies to a proxy and where it comes from (its own, its environment's, the default). */
export const effectivePolicySchema = z.object({
  proxyId: proxyIdSchema,
  policy: scalingPolicySchema,
  source: policySourceSchema,
});
export type EffectivePolicy = z.output<typeof effectivePolicySchema>;
/** `created` tells a new policy (201) from a replaced one (200). */
export const storedPolicySchema = effectivePolicySchema.extend({ created: z.boolean() });
export const presetsSchema = z.object({
  presets: z.array(z.object({ name: z.enum(PRESET_NAMES), policy: scalingPolicySchema })),
});
export const policyValidationSchema = z.object({
  valid: z.boolean(),
  policy: scalingPolicySchema.nullable(),
  issues: z.array(apiIssueSchema),
  warnings: z.array(z.string()),
});
export const environmentPolicySchema = z.object({
  environment: environmentSchema,
  policy: scalingPolicySchema,
});
export const environmentPoliciesSchema = z.object({ items: z.array(environmentPolicySchema) });
export const storedEnvironmentPolicySchema = environmentPolicySchema.extend({ created: z.boolean() });

/** `scaling.evaluate`: core's decision with the id it is stored under and the policy's source. */
export const evaluationSchema = decisionSchema.extend({
  decisionId: z.uuid(),
  proxyId: proxyIdSchema,
  policySource: policySourceSchema,
});
export const scalingEventPageSchema = pageSchema(scalingEventRecordSchema);
export const decisionPageSchema = pageSchema(decisionRecordSchema);
export const auditPageSchema = pageSchema(auditEntrySchema);
