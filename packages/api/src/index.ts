export type { AuthConfig, VerifiedToken } from "./auth.ts";
export { AuthenticationError, createTokenVerifier, signToken, verifyToken } from "./auth.ts";
export type {
  ApiDeps,
  ApiTelemetry,
  Context,
  ContextFactory,
  Logger,
  RequestInfo,
  ScalingExecutor,
} from "./context.ts";
export { createContext } from "./context.ts";
export type { ApiIssue } from "./errors.ts";
export type { EvaluationResult } from "./evaluation.ts";
export { API_VERSION, createOpenApiDocument } from "./openapi.ts";
export type { RateLimiter } from "./rate-limit.ts";
export { createRateLimiter } from "./rate-limit.ts";
export type { RestErrorBody, RestHandlerOptions } from "./rest.ts";
export { createRestHandler, DEFAULT_MAX_BODY_BYTES } from "./rest.ts";
export type { AppRouter } from "./root.ts";
export { appRouter, createCaller } from "./root.ts";
export { MAX_BATCH_SAMPLES } from "./routers/metrics.ts";
export type { ProxyView } from "./routers/proxies.ts";
export * from "./schemas.ts";
export type { ApiMeta } from "./trpc.ts";
export { INTERNAL_ERROR_MESSAGE } from "./trpc.ts";
