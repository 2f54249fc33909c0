import type { ActuatorConfig } from "@proxyscale/core";
import { CommandActuator } from "./command.ts";
import { KubernetesActuator } from "./kubernetes/actuator.ts";
import { LocalActuator } from "./local/actuator.ts";
import { NoneActuator } from "./none.ts";
import type { Actuator, ActuatorDeps } from "./types.ts";
import { WebhookActuator } from "./webhook.ts";

/**
 * Builds the actuator a proxy's config names. The config must already be parsed by core's
 * `actuatorConfigSchema` (defaults filled). `local` is the only kind that starts anything (its front listener
 * and `deps.initialReplicas` workers); the others are ready at once.
 */
export async function createActuator(config: ActuatorConfig, deps: ActuatorDeps): Promise<Actuator> {
  switch (config.kind) {
    case "none":
      return new NoneActuator(deps);
    case "local":
      return LocalActuator.create(config, deps);
    case "kubernetes":
      return new KubernetesActuator(config, deps);
    case "webhook":
      return new WebhookActuator(config, deps);
    case "command":
      return new CommandActuator(config, deps);
  }
}

export { CommandActuator, runCommand, substitutePlaceholders } from "./command.ts";
export { KubernetesActuator } from "./kubernetes/actuator.ts";
export { type KubeCredentials, loadKubeCredentials } from "./kubernetes/credentials.ts";
export { LocalActuator, type LocalReplicaInfo } from "./local/actuator.ts";
export type { FrontStats } from "./local/front.ts";
export { type HelloUpstream, type HelloUpstreamOptions, startHelloUpstream } from "./local/upstream.ts";
export { NoneActuator } from "./none.ts";
export * from "./types.ts";
export {
  SIGNATURE_HEADER,
  signWebhookPayload,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
  WebhookActuator,
} from "./webhook.ts";
