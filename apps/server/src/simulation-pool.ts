import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { pathToFileURL } from "node:url";
import type { RunSimulationInput, SimulationReport } from "@proxyscale/core";
import { Piscina } from "piscina";

export interface SimulationPool {
  simulate(input: RunSimulationInput): Promise<SimulationReport>;
  close(): Promise<void>;
}

/**
 * Runs simulations on worker threads (piscina): a 30-day replay is up to a second of CPU, which on the event
 * loop would hold every push, decision and health check behind it. At most `maxThreads` run at once (default:
 * half the cores, at least one), the rest queue; idle workers exit after 30 s. Workers load the TypeScript
 * sources through tsx, as the server does.
 */
export function createSimulationPool(options: { maxThreads?: number } = {}): SimulationPool {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
  const pool = new Piscina({
    filename: new URL("./simulation-worker.ts", import.meta.url).href,
    minThreads: 0,
    maxThreads: options.maxThreads ?? Math.max(1, Math.floor(availableParallelism() / 2)),
    idleTimeout: 30_000,
    execArgv: ["--import", tsx],
  });
  return {
    simulate: (input) => pool.run(input) as Promise<SimulationReport>,
    close: () => pool.destroy(),
  };
}
