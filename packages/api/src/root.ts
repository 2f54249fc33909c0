import { auditRouter } from "./routers/audit.ts";
import { healthRouter } from "./routers/health.ts";
import { liveRouter } from "./routers/live.ts";
import { metricsRouter } from "./routers/metrics.ts";
import { policiesRouter } from "./routers/policies.ts";
import { proxiesRouter } from "./routers/proxies.ts";
import { scalingRouter } from "./routers/scaling.ts";
import { createCallerFactory, router } from "./trpc.ts";

export const appRouter = router({
  proxies: proxiesRouter,
  policies: policiesRouter,
  metrics: metricsRouter,
  scaling: scalingRouter,
  audit: auditRouter,
  health: healthRouter,
  live: liveRouter,
});

export type AppRouter = typeof appRouter;

/** `createCaller(context)` runs procedures in-process (tests, the control loop) with the same auth and validation. */
export const createCaller = createCallerFactory(appRouter);
