export * from "./client.ts";
export * from "./reporter.ts";
