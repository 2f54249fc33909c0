export * from "./audit.ts";
export * from "./leases.ts";
export * from "./metrics.ts";
export * from "./policies.ts";
export * from "./proxies.ts";
export * from "./rate-limits.ts";
export * from "./scaling.ts";
