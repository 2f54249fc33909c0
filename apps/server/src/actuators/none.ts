import type {
  Actuator,
  ActuatorDeps,
  ReplicaCounts,
  SetReplicasContext,
  SetReplicasResult,
} from "./types.ts";
import { assertReplicaCount } from "./types.ts";

/** Records the requested count and changes nothing: for proxies whose replicas are managed elsewhere. */
export class NoneActuator implements Actuator {
  readonly kind = "none";
  private replicas: number;

  constructor(deps: Pick<ActuatorDeps, "initialReplicas">) {
    this.replicas = deps.initialReplicas ?? 0;
  }

  async getReplicas(): Promise<ReplicaCounts> {
    return { replicas: this.replicas, readyReplicas: this.replicas, unhealthyReplicas: 0 };
  }

  async setReplicas(replicas: number, _ctx: SetReplicasContext): Promise<SetReplicasResult> {
    assertReplicaCount(replicas);
    this.replicas = replicas;
    return { status: "completed", observedReplicas: replicas };
  }

  async close(): Promise<void> {}
}
