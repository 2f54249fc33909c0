import {
  type ActuatorConfig,
  type MetricsSource,
  minReplicasZeroError,
  redactActuatorConfig,
  redactMetricsSource,
} from "@proxyscale/core";
import { createProxy, deleteProxy, listProxies, type ProxyRecord, updateProxy } from "@proxyscale/db";
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { callerTierLimits, effectivePolicyOf, loadVisibleProxy, ownerScope } from "../access.ts";
import { inputError } from "../errors.ts";
import {
  deletedProxySchema,
  type ProxyView,
  proxyPageSchema,
  proxyViewSchema,
  sourceHealthSchema,
} from "../outputs.ts";
import { cursorSchema, limitSchema, proxyFieldsSchema, proxyIdSchema, proxyPatchSchema } from "../schemas.ts";
import { operatorProcedure, viewerProcedure } from "../trpc.ts";

export function toProxyView(proxy: ProxyRecord): ProxyView {
  const actuator = { ...proxy.actuator.config, kind: proxy.actuator.kind } as ActuatorConfig;
  return {
    ...proxy,
    actuator: redactActuatorConfig(actuator),
    metricsSource: redactMetricsSource(proxy.metricsSource as MetricsSource),
  };
}

function toStoredActuator(actuator: ActuatorConfig): ProxyRecord["actuator"] {
  const { kind, ...config } = actuator;
  return { kind, config };
}

const TAGS = ["proxies"];

export const proxiesRouter = {
  register: operatorProcedure
    .meta({
      openapi: {
        method: "POST",
        path: "/proxies",
        tags: TAGS,
        summary: "Register a proxy (owned by the caller)",
      },
      successStatus: 201,
    })
    .input(proxyFieldsSchema)
    .output(proxyViewSchema)
    .mutation(async ({ ctx, input }) => {
      // The cap is checked inside createProxy's transaction (CapExceededError → 403), so concurrent
      // registrations cannot pass it.
      const proxy = await createProxy(ctx.db, {
        ownerId: ctx.user.sub,
        ownerTier: ctx.user.tier,
        maxProxiesPerOwner: callerTierLimits(ctx).maxProxiesPerOwner,
        name: input.name,
        environment: input.environment,
        region: input.region,
        actuator: toStoredActuator(input.actuator),
        metricsSource: input.metricsSource,
        actorId: ctx.user.sub,
      });
      return toProxyView(proxy);
    }),

  list: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxies",
        tags: TAGS,
        summary: "List the proxies the caller may see",
      },
    })
    .input(z.strictObject({ limit: limitSchema.default(50), cursor: cursorSchema.optional() }))
    .output(proxyPageSchema)
    .query(async ({ ctx, input }) => {
      const page = await listProxies(ctx.db, {
        ownerId: ownerScope(ctx),
        limit: input.limit,
        cursor: input.cursor,
      });
      return { items: page.items.map(toProxyView), nextCursor: page.nextCursor ?? null };
    }),

  get: viewerProcedure
    .meta({ openapi: { method: "GET", path: "/proxies/{proxyId}", tags: TAGS, summary: "Get one proxy" } })
    .input(z.strictObject({ proxyId: proxyIdSchema }))
    .output(proxyViewSchema)
    .query(async ({ ctx, input }) => toProxyView(await loadVisibleProxy(ctx, input.proxyId))),

  sourceHealth: viewerProcedure
    .meta({
      openapi: {
        method: "GET",
        path: "/proxies/{proxyId}/source-health",
        tags: TAGS,
        summary: "A scraped proxy's last scrape and each target's health (from the server that scrapes it)",
      },
    })
    .input(z.strictObject({ proxyId: proxyIdSchema }))
    .output(sourceHealthSchema)
    .query(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      return { proxyId: input.proxyId, health: ctx.sourceHealth(input.proxyId) };
    }),

  update: operatorProcedure
    .meta({
      openapi: {
        method: "PATCH",
        path: "/proxies/{proxyId}",
        tags: TAGS,
        summary: "Change a proxy's fields (ownerTier: admins only)",
      },
    })
    .input(proxyPatchSchema.extend({ proxyId: proxyIdSchema }))
    .output(proxyViewSchema)
    .mutation(async ({ ctx, input }) => {
      const { proxyId, actuator, ...fields } = input;
      await loadVisibleProxy(ctx, proxyId);
      const zeroError = actuator ? minReplicasZeroError(actuator.kind) : null;
      if (zeroError !== null && (await effectivePolicyOf(ctx, proxyId)).policy.minReplicas === 0) {
        throw inputError(
          "actuator.kind",
          `the proxy's policy has minReplicas 0: ${zeroError}`,
          actuator?.kind,
        );
      }
      if (fields.ownerTier !== undefined && ctx.user.role !== "admin") {
        throw new TRPCError({
          code: "FORBIDDEN",
          message: `ownerTier: changing the owner's tier requires role admin; your token has role ${ctx.user.role}`,
        });
      }
      const proxy = await updateProxy(ctx.db, {
        id: proxyId,
        ownerId: ownerScope(ctx),
        patch: { ...fields, ...(actuator ? { actuator: toStoredActuator(actuator) } : {}) },
        actorId: ctx.user.sub,
      });
      return toProxyView(proxy);
    }),

  delete: operatorProcedure
    .meta({
      openapi: {
        method: "DELETE",
        path: "/proxies/{proxyId}",
        tags: TAGS,
        summary: "Delete a proxy and its data",
      },
    })
    .input(z.strictObject({ proxyId: proxyIdSchema }))
    .output(deletedProxySchema)
    .mutation(async ({ ctx, input }) => {
      await loadVisibleProxy(ctx, input.proxyId);
      await deleteProxy(ctx.db, { id: input.proxyId, ownerId: ownerScope(ctx), actorId: ctx.user.sub });
      ctx.telemetry.proxyRemoved?.(input.proxyId);
      return { proxyId: input.proxyId, deleted: true as const };
    }),
};
