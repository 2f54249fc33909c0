import { loadConfig } from "../src/config.ts";
import { type RunningServer, startServer } from "../src/start.ts";
import { TEST_SECRET } from "./support.ts";

/**
 * The server as `npm start` runs it (startServer: control loop, actuators, scrapers), on an ephemeral port over an
 * in-memory database, its tokens signed with TEST_SECRET and no demo; `env` adds to or overrides that.
 */
export function startInMemoryServer(env: Record<string, string> = {}): Promise<RunningServer> {
  return startServer(
    loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      PROXYSCALE_DATA_DIR: "memory://",
      PROXYSCALE_JWT_SECRET: TEST_SECRET,
      PROXYSCALE_DEMO: "0",
      LOG_LEVEL: "silent",
      ...env,
    }),
  );
}
