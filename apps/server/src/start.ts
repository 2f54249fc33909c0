import { signToken } from "@proxyscale/api";
import { type Database, openDatabase } from "@proxyscale/db";
import type { DestinationStream } from "pino";
import type { ServerConfig } from "./config.ts";
import { createLogger } from "./logger.ts";
import { ensureSecretFile } from "./secret.ts";
import { createServer, type ProxyScaleServer, type ServerDeps } from "./server.ts";

export interface RunningServer {
  url: string;
  port: number;
  server: ProxyScaleServer;
  database: Database;
  /** Set when the secret lives in the data directory (embedded mode). */
  secretFile: { path: string; created: boolean } | null;
  /** An admin token, minted only when the secret file was created by this start. */
  firstAdminToken: string | null;
  /** Graceful stop: no new connections, in-flight requests finish, then the database closes. */
  close(): Promise<void>;
}

export interface StartOptions {
  logDestination?: DestinationStream;
  overrides?: Partial<Omit<ServerDeps, "database" | "auth" | "logger">>;
}

/** Opens the database (PostgreSQL when DATABASE_URL is set, else PGlite in the data dir) and listens. */
export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<RunningServer> {
  const logger = createLogger(config.logLevel, options.logDestination);
  const secretFile = config.jwtSecret || config.jwksUrl ? null : ensureSecretFile(config.dataDir);
  const auth = {
    jwtSecret: config.jwtSecret ?? secretFile?.secret,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
  };
  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  const server = createServer({
    database,
    auth,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    publicUrl: config.publicUrl,
    ...options.overrides,
  });
  let bound: { url: string; port: number };
  try {
    bound = await server.listen(config.port, config.host);
  } catch (error) {
    await database.close();
    throw error;
  }
  logger.info(
    { url: bound.url, driver: database.driver, schema: database.schema },
    "proxyscale server listening",
  );
  const firstAdminToken =
    secretFile?.created && auth.jwtSecret
      ? await signToken({
          sub: "admin",
          role: "admin",
          tier: "enterprise",
          secret: auth.jwtSecret,
          expiresIn: "30d",
        })
      : null;
  return {
    ...bound,
    server,
    database,
    secretFile: secretFile ? { path: secretFile.path, created: secretFile.created } : null,
    firstAdminToken,
    async close() {
      await server.close();
      await database.close();
      logger.info({}, "proxyscale server stopped");
    },
  };
}
