import { scalingPolicySchema } from "@proxyscale/core";
import { type Command, onePositional, parseCommand, UsageError } from "../command.ts";
import { readDataFile, validate } from "../files.ts";
import { yaml } from "../format.ts";

/** `<proxyId>` or `--env NAME`: a proxy's own policy or an environment's default. */
function target(
  positionals: string[],
  environment: string | undefined,
): { proxyId: string } | { environment: string; proxyId?: never } {
  if (environment === undefined) return { proxyId: onePositional(positionals, "proxyId") };
  if (positionals.length > 0) throw new UsageError("give either <proxyId> or --env <environment>, not both");
  return { environment };
}

export const policyGetCommand: Command = {
  name: "policy get",
  summary: "show a proxy's effective policy and where it comes from, or an environment's default",
  usage: "<proxyId> | --env <environment>",
  examples: [
    "proxyscale policy get 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e",
    "proxyscale policy get --env staging",
  ],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(argv, { env: { type: "string" } }, env);
    const which = target(positionals, values.env);
    const client = session.client();
    if (which.proxyId === undefined) {
      const result = await client.policies.getEnvironment.query(which);
      return {
        data: result,
        text: `# default policy of environment ${result.environment}\n${yaml(result.policy)}`,
      };
    }
    const result = await client.policies.get.query(which);
    return {
      data: result,
      text: `# effective policy of proxy ${result.proxyId} (source: ${result.source})\n${yaml(result.policy)}`,
    };
  },
};

export const policySetCommand: Command = {
  name: "policy set",
  summary: "store a policy from a JSON or YAML file, validated before anything is sent (admin)",
  usage: "(<proxyId> | --env <environment>) --file policy.yaml",
  examples: [
    "proxyscale policy set 0b9c6f5e-6a58-4a8e-9a43-2f1f0f7c1f3e --file ./policy.yaml",
    "proxyscale policy set --env production --file ./production.json",
  ],
  async run(argv, env) {
    const { values, positionals, session } = parseCommand(
      argv,
      { env: { type: "string" }, file: { type: "string", short: "f" } },
      env,
    );
    const which = target(positionals, values.env);
    if (!values.file) throw new UsageError("missing --file <policy.json|policy.yaml>");
    const policy = validate(
      scalingPolicySchema,
      readDataFile(values.file),
      `policy file ${values.file} is invalid; nothing was sent`,
    );
    const client = session.client();
    if (which.proxyId === undefined) {
      const result = await client.policies.setEnvironment.mutate({ ...policy, ...which });
      const verb = result.created ? "created" : "replaced";
      return {
        data: result,
        text: `${verb} the default policy of environment ${result.environment}\n${yaml(result.policy)}`,
      };
    }
    const result = await client.policies.upsert.mutate({ ...policy, ...which });
    const verb = result.created ? "created" : "replaced";
    return { data: result, text: `${verb} the policy of proxy ${result.proxyId}\n${yaml(result.policy)}` };
  },
};
