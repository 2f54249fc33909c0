import { type Command, intFlag, onePositional, parseCommand, UsageError } from "../command.ts";
import { eventTable } from "./events.ts";

export const scaleCommand: Command = {
  name: "scale",
  summary: "scale a proxy by hand: creates a scaling event for its actuator (operator)",
  usage: "<proxyId> --replicas N [--reason TEXT]",
  examples: ['proxyscale scale 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --replicas 6 --reason "launch traffic"'],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      { replicas: { type: "string" }, reason: { type: "string" } },
      env,
    );
    const proxyId = onePositional(positionals, "proxyId");
    const newReplicaCount = intFlag(values.replicas, "replicas", { min: 0 });
    if (newReplicaCount === undefined) throw new UsageError("missing --replicas <N>");
    const event = await session.client().scaling.execute.mutate({
      proxyId,
      newReplicaCount,
      ...(values.reason === undefined ? {} : { reason: values.reason }),
    });
    return {
      data: event,
      text: `scaling event ${event.id} is ${event.status}: ${event.previousReplicas} → ${event.newReplicas}\n${eventTable([event])}`,
    };
  },
};
