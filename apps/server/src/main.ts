import { dirname, relative } from "node:path";
import { ConfigError, loadConfig } from "./config.ts";
import { FIRST_ADMIN_TOKEN_SECONDS, startServer } from "./start.ts";

/** 2592000 → "30 days", 3600 → "1 hour", 90 → "90 seconds". */
function describeSeconds(seconds: number): string {
  for (const [unit, size] of [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) {
      const count = seconds / size;
      return `${count} ${unit}${count === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} seconds`;
}

/** `pnpm --filter @proxyscale/server start`: zero config runs on embedded PGlite in ./.proxyscale. */
async function main() {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`proxyscale: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }

  const running = await startServer(config);
  const lines = [
    "",
    `ProxyScale is running at ${running.url}`,
    `  REST ${running.url}/api · reference ${running.url}/api/docs · tRPC ${running.url}/trpc · metrics ${running.url}/metrics`,
    `  database: ${running.database.driver === "pglite" ? `embedded PGlite in ${running.database.dataDir}` : "PostgreSQL"}`,
  ];
  if (running.secretFile) {
    const shortPath = relative(process.cwd(), running.secretFile.path);
    const secretPath = shortPath && !shortPath.startsWith("..") ? shortPath : running.secretFile.path;
    if (running.firstAdminToken) {
      lines.push(
        `  created the JWT secret ${secretPath} (mode 0600)`,
        "",
        `Admin token (valid ${describeSeconds(Math.min(FIRST_ADMIN_TOKEN_SECONDS, config.maxTokenLifetimeSeconds ?? Infinity))}):`,
        `  ${running.firstAdminToken}`,
        "",
        "Sign in to the admin UI (the token rides in the #fragment, which the browser never sends to a server):",
        `  ${running.url}/#token=${running.firstAdminToken}`,
      );
    }
    lines.push(
      "",
      "Mint more tokens with the CLI (from the repository root):",
      `  npm run -s proxyscale -- token --data-dir ${dirname(running.secretFile.path)} --role operator --tier pro --sub you`,
    );
  }
  if (running.demo) {
    lines.push(
      "",
      `Demo proxy ${running.demo.name}: ${running.demo.frontUrl} (local workers in front of ${running.demo.upstreamUrl})`,
      "  watch it scale under load, from the repository root: npm run demo:load   (PROXYSCALE_DEMO=0 skips the demo)",
    );
  }
  process.stdout.write(`${lines.join("\n")}\n\n`);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second signal: the operator will not wait for the graceful stop.
      process.stderr.write(`proxyscale: ${signal} again: exiting now\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(
      `proxyscale: ${signal}: stopping (in-flight requests finish; at most ${config.shutdownTimeoutMs / 1000} s)\n`,
    );
    running.close().then(
      ({ abandoned }) => {
        if (abandoned.length > 0) {
          process.stderr.write(
            `proxyscale: stopped at the shutdown deadline, abandoning: ${abandoned.join(", ")}\n`,
          );
        }
        process.exit(abandoned.length > 0 ? 1 : 0);
      },
      (error: unknown) => {
        process.stderr.write(`proxyscale: shutdown failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  process.stderr.write(
    `proxyscale: failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
