// parseExposition (./exposition.ts) is exported on its own path, @proxyscale/core/exposition: it brings the
// parser library, which the UI, importing this index, has no use for.
export * from "./mapping.ts";
export * from "./prometheus.ts";
export * from "./schema.ts";
