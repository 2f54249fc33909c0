import {
  actuatorConfigSchema,
  metricsSourceSchema,
  SCALING_TRIGGERS,
  storableInteger,
  storableText,
  tierSchema,
} from "@proxyscale/core";
import { METRICS_RANGE_FIELDS, PROXY_HEALTH } from "@proxyscale/db";
import { z } from "zod";

/**
 * Inputs that exist only at the API's edge (ids, paging, the proxy registration form, the seed's execute body).
 * Everything about policies, metrics and actuators comes from core's schemas.
 */
export const proxyIdSchema = z.uuid({ message: "must be a proxy id (uuid)" });
export const eventIdSchema = z.uuid({ message: "must be a scaling event id (uuid)" });

export const limitSchema = z
  .number()
  .int({ message: "must be an integer" })
  .min(1, { message: "must be at least 1" })
  .max(500, { message: "must be at most 500" });
export const cursorSchema = storableText().min(1).max(500);

export const environmentSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, {
  message: "must be an environment name: lowercase letters, digits, _ or -, at most 63",
});

/** Some of a metrics range's value columns, each named once (absent: every one). */
export const metricsRangeFieldsSchema = z
  .array(z.enum(METRICS_RANGE_FIELDS, { message: `must be one of ${METRICS_RANGE_FIELDS.join(", ")}` }))
  .min(1, { message: "must name at least 1 field" })
  .refine((fields) => new Set(fields).size === fields.length, { message: "must not name a field twice" });

export const proxyNameSchema = storableText()
  .trim()
  .min(1, { message: "must not be blank" })
  .max(200, { message: "must be at most 200 characters" });

export const proxyFieldsSchema = z.strictObject({
  name: proxyNameSchema,
  environment: environmentSchema.default("production"),
  region: storableText().min(1).max(100).nullable().default(null),
  actuator: actuatorConfigSchema.default({ kind: "none" }),
  metricsSource: metricsSourceSchema.default({ kind: "push" }),
});

export const proxyPatchSchema = z.strictObject({
  name: proxyNameSchema.optional(),
  environment: environmentSchema.optional(),
  region: storableText().min(1).max(100).nullable().optional(),
  actuator: actuatorConfigSchema.optional(),
  metricsSource: metricsSourceSchema.optional(),
  /** The owner's tier, whose caps bound the proxy. Admins only: tokens say the caller's tier, not the owner's. */
  ownerTier: tierSchema.optional(),
});

/** The seed's execute body. `auto` and `activation` are the control loop's own triggers, not accepted from callers. */
export const executeScalingSchema = z.strictObject({
  newReplicaCount: storableInteger(0),
  reason: storableText("multiline")
    .trim()
    .min(1, { message: "must not be blank" })
    .max(500)
    .default("manual scale"),
  triggeredBy: z
    .enum(SCALING_TRIGGERS)
    .exclude(["auto", "activation"], { message: "must be manual or admin" })
    .optional(),
});

export const evaluateOptionsSchema = z.strictObject({
  /** For proxies whose replicas are managed outside ProxyScale: the count to evaluate against. */
  currentReplicas: storableInteger(0).optional(),
});

export const proxyHealthSchema = z.strictObject({
  health: z.enum(PROXY_HEALTH),
  unhealthyReplicas: storableInteger(0).default(0),
});
