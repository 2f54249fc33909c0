#!/usr/bin/env node
// `node scripts/pnpm.mjs <args>`: pnpm <args>, after installing pnpm and the dependencies when missing.
import { ensureToolchain, runPnpm } from "./toolchain.mjs";

process.exit(await runPnpm(ensureToolchain(), process.argv.slice(2)));
