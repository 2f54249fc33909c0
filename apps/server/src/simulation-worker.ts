/** A simulator pool's worker thread (simulation-pool.ts): core's runSimulation, off the server's event loop. */
import { type RunSimulationInput, runSimulation, type SimulationReport } from "@proxyscale/core";

export default function simulate(input: RunSimulationInput): SimulationReport {
  return runSimulation(input);
}
