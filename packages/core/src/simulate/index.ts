export * from "./capacity.ts";
export * from "./compare.ts";
export * from "./elasticity.ts";
export * from "./replay.ts";
export * from "./request.ts";
export * from "./simulate.ts";
export * from "./trace.ts";
export * from "./trail.ts";
