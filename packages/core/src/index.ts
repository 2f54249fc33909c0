export * from "./actuators.ts";
export * from "./auth.ts";
export * from "./decision.ts";
export * from "./metrics.ts";
export * from "./policy.ts";
