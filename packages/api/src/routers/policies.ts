import {
  type ActuatorKind,
  minReplicasZeroError,
  PRESET_NAMES,
  policyFromPreset,
  type ScalingPolicy,
  scalingPolicySchema,
} from "@proxyscale/core";
import {
  deletePolicy,
  getEnvironmentPolicy,
  listEnvironmentPolicies,
  setEnvironmentPolicy,
  upsertPolicy,
} from "@proxyscale/db";
import { z } from "zod";
import {
  type AuthedContext,
  assertWithinOwnerTier,
  callerTierLimits,
  effectivePolicyOf,
  loadVisibleProxy,
  tierCapExceeded,
} from "../access.ts";
import { inputError, notFound, toApiIssues } from "../errors.ts";
import {
  effectivePolicySchema,
  environmentPoliciesSchema,
  environmentPolicySchema,
  policyValidationSchema,
  presetsSchema,
  storedEnvironmentPolicySchema,
  storedPolicySchema,
} from "../outputs.ts";
import { environmentSchema, proxyIdSchema } from "../schemas.ts";
import { adminProcedure, viewerProcedure } from "../trpc.ts";

const TAGS = ["policies"];

/** An environment default has no owner: it is bounded by the caller's tier (the engine still caps each proxy by its owner's). */
function assertWithinCallerTier(ctx: AuthedContext, policy: ScalingPolicy) {
  if (policy.maxReplicas > callerTierLimits(ctx).maxReplicasPerProxy) {
    throw tierCapExceeded({ cap: "maxReplicasPerProxy", tier: ctx.user.tier, requested: policy.maxReplicas });
  }
}

/** The seed's upsert answer: 201 when the write created the policy, 200 when it replaced one. */
function createdOrReplaced(output: unknown): number {
  return (output as { created: boolean }).created ? 201 : 200;
}

export const policiesRouter = {
  get: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxy/scaling/policies/{proxyId}",
        tags: TAGS,
        summary: "The proxy's effective policy and where it comes from (proxy, environment or default)",
      },
    })
    .input(z.strictObject({ proxyId: proxyIdSchema }))
    .output(effectivePolicySchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      const effective = await effectivePolicyOf(ctx, input.proxyId);
      return { proxyId: input.proxyId, ...effective };
    }),

  upsert: adminProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxy/scaling/policies/{proxyId}",
        tags: TAGS,
        summary: "Create (201) or replace (200) the proxy's own policy. Admin only.",
      },
      successStatus: createdOrReplaced,
    })
    .input(scalingPolicySchema.safeExtend({ proxyId: proxyIdSchema }))
    .output(storedPolicySchema)
    .mutation(async ({ ctx, input }) => {
      const { proxyId, ...policy } = input;
      const proxy = await loadVisibleProxy(ctx, proxyId);
      assertWithinOwnerTier(proxy, policy.maxReplicas);
      const zeroError =
        policy.minReplicas === 0 ? minReplicasZeroError(proxy.actuator.kind as ActuatorKind) : null;
      if (zeroError !== null) throw inputError("minReplicas", zeroError, 0);
      const stored = await upsertPolicy(ctx.db, { proxyId, policy, actorId: ctx.user.sub });
      return { proxyId, policy: stored.policy, source: "proxy" as const, created: stored.created };
    }),

  delete: adminProcedure
    .meta({
      openapi: {
        method: "DELETE",
        path: "/proxy/scaling/policies/{proxyId}",
        tags: TAGS,
        summary:
          "Remove the proxy's own policy; the environment's or the global default applies again. Admin only.",
      },
    })
    .input(z.strictObject({ proxyId: proxyIdSchema }))
    .output(effectivePolicySchema)
    .mutation(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      await deletePolicy(ctx.db, { proxyId: input.proxyId, actorId: ctx.user.sub });
      const effective = await effectivePolicyOf(ctx, input.proxyId);
      return { proxyId: input.proxyId, ...effective };
    }),

  listPresets: viewerProcedure
    .meta({
      openapi: { method: "GET", path: "/policies/presets", tags: TAGS, summary: "Named starting policies" },
    })
    .input(z.strictObject({}))
    .output(presetsSchema)
    .query(() => ({ presets: PRESET_NAMES.map((name) => ({ name, policy: policyFromPreset(name) })) })),

  validate: viewerProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/policies/validate",
        tags: TAGS,
        summary: "Dry check of a policy: the normalized policy or the issues. Saves nothing.",
      },
    })
    .input(z.strictObject({ policy: z.unknown() }))
    .output(policyValidationSchema)
    .mutation(({ ctx, input }) => {
      const parsed = scalingPolicySchema.safeParse(input.policy);
      if (!parsed.success)
        return { valid: false, policy: null, issues: toApiIssues(parsed.error), warnings: [] };
      const cap = callerTierLimits(ctx).maxReplicasPerProxy;
      const warnings =
        parsed.data.maxReplicas > cap
          ? [
              `maxReplicas ${parsed.data.maxReplicas} exceeds tier ${ctx.user.tier}'s cap maxReplicasPerProxy (${cap})`,
            ]
          : [];
      return { valid: true, policy: parsed.data, issues: [], warnings };
    }),

  listEnvironments: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/policies/environments",
        tags: TAGS,
        summary: "Default policies per environment",
      },
    })
    .input(z.strictObject({}))
    .output(environmentPoliciesSchema)
    .query(async ({ ctx }) => {
      const items = await listEnvironmentPolicies(ctx.db);
      return { items: items.map((item) => ({ environment: item.environment, policy: item.policy })) };
    }),

  getEnvironment: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/policies/environments/{environment}",
        tags: TAGS,
        summary: "The default policy of one environment",
      },
    })
    .input(z.strictObject({ environment: environmentSchema }))
    .output(environmentPolicySchema)
    .query(async ({ ctx, input }) => {
      const policy = await getEnvironmentPolicy(ctx.db, { environment: input.environment });
      if (!policy) throw notFound("environment policy", input.environment);
      return { environment: input.environment, policy };
    }),

  setEnvironment: adminProcedure
    .meta({
      openapi: {
        method: "PUT",
        path: "/policies/environments/{environment}",
        tags: TAGS,
        summary: "Set an environment's default policy: 201 created, 200 replaced. Admin only.",
      },
      successStatus: createdOrReplaced,
    })
    .input(scalingPolicySchema.safeExtend({ environment: environmentSchema }))
    .output(storedEnvironmentPolicySchema)
    .mutation(async ({ ctx, input }) => {
      const { environment, ...policy } = input;
      assertWithinCallerTier(ctx, policy);
      const stored = await setEnvironmentPolicy(ctx.db, { environment, policy, actorId: ctx.user.sub });
      return { environment, policy: stored.policy, created: stored.created };
    }),
};
