#!/usr/bin/env node
// `npm start`: the server on the embedded database, serving the admin UI (built first when its build is missing
// or older than its sources). The server runs as a direct child (no pnpm or shell in
// between) so SIGINT/SIGTERM reach it and it shuts down gracefully.
import { join } from "node:path";
import { ensureAdminBuild } from "./admin-build.mjs";
import { ensureToolchain, root, runForwardingSignals } from "./toolchain.mjs";

ensureAdminBuild(ensureToolchain(), root);
const serverDir = join(root, "apps", "server");
process.exit(await runForwardingSignals(process.execPath, ["--import", "tsx", "src/main.ts"], serverDir));
