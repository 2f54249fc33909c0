#!/usr/bin/env node
// The `proxyscale` CLI runs from TypeScript source: tsx (resolved from this package, so any cwd works)
// compiles src/cli/main.ts and the workspace packages it imports on the fly.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2), process.env);
