import { parseArgs } from "node:util";
import { type Command, DEFAULT_URL, GLOBAL_OPTIONS, serverUrl, UsageError } from "./command.ts";
import { evaluateCommand } from "./commands/evaluate.ts";
import { eventsCommand } from "./commands/events.ts";
import { metricsLatestCommand, metricsPushCommand } from "./commands/metrics.ts";
import { policyGetCommand, policySetCommand } from "./commands/policy.ts";
import {
  proxiesCreateCommand,
  proxiesGetCommand,
  proxiesListCommand,
  proxiesRemoveCommand,
} from "./commands/proxies.ts";
import { scaleCommand } from "./commands/scale.ts";
import { simulateCommand } from "./commands/simulate.ts";
import { summaryCommand } from "./commands/summary.ts";
import { tokenCommand } from "./commands/token.ts";
import { describeFailure, render, renderFailure } from "./format.ts";

const COMMANDS: Command[] = [
  tokenCommand,
  proxiesListCommand,
  proxiesGetCommand,
  proxiesCreateCommand,
  proxiesRemoveCommand,
  policyGetCommand,
  policySetCommand,
  metricsPushCommand,
  metricsLatestCommand,
  evaluateCommand,
  scaleCommand,
  eventsCommand,
  summaryCommand,
  simulateCommand,
];

/** Aliases people type for a subcommand. */
const ALIASES: Record<string, string> = { "proxies list": "proxies ls", "proxies delete": "proxies rm" };

function overview(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return [
    "usage: proxyscale <command> [flags]",
    "",
    "commands:",
    ...COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`),
    "",
    "global flags:",
    `  --url URL      the server (PROXYSCALE_URL, default ${DEFAULT_URL})`,
    "  --token JWT    bearer token (PROXYSCALE_TOKEN); mint one with `proxyscale token`",
    "  --json         print the server's answer as JSON, for scripts",
    "  -h, --help     help for a command: proxyscale <command> --help",
    "",
    "exit codes: 0 ok, 1 failed (the server's message, an invalid file, an unreachable server), 2 bad usage",
  ].join("\n");
}

function commandHelp(command: Command): string {
  return [
    `usage: proxyscale ${command.name} ${command.usage}`,
    "",
    command.summary,
    "",
    "examples:",
    ...command.examples.map((example) => `  ${example}`),
  ].join("\n");
}

/**
 * Finds the command among the leading positionals ("proxies ls", "evaluate") and returns the argv without it.
 * Global flags may come before or after the command.
 */
function findCommand(argv: string[]): { command: Command | undefined; rest: string[]; words: string[] } {
  const { tokens } = parseArgs({
    args: argv,
    options: GLOBAL_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionals = tokens.filter((token) => token.kind === "positional");
  for (const length of [2, 1]) {
    const words = positionals.slice(0, length);
    if (words.length < length) continue;
    const name = words.map((token) => token.value).join(" ");
    const command = COMMANDS.find((candidate) => candidate.name === (ALIASES[name] ?? name));
    if (command) {
      const skip = new Set(words.map((token) => token.index));
      return { command, rest: argv.filter((_, index) => !skip.has(index)), words: [] };
    }
  }
  return { command: undefined, rest: argv, words: positionals.map((token) => token.value) };
}

/** Runs one CLI invocation; returns the exit code. Writes only to the given streams. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream } = process,
): Promise<number> {
  const { values: global } = parseArgs({ args: argv, options: GLOBAL_OPTIONS, strict: false });
  const json = global.json === true;
  const { command, rest, words } = findCommand(argv);
  if (!command) {
    const wantsHelp = global.help === true || words[0] === "help";
    if (wantsHelp && words.length <= 1) {
      io.stdout.write(`${overview()}\n`);
      return 0;
    }
    const unknown = words.length === 0 ? "no command given" : `unknown command: ${words.join(" ")}`;
    io.stderr.write(`proxyscale: ${unknown}\n\n${overview()}\n`);
    return 2;
  }
  if (global.help === true) {
    io.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }
  try {
    const output = await command.run(rest, env);
    io.stdout.write(render(output, json));
    return 0;
  } catch (error) {
    const report = describeFailure(error, serverUrl(global.url, env));
    io.stderr.write(renderFailure(report, json));
    if (error instanceof UsageError && !json) io.stderr.write(`\n${commandHelp(command)}\n`);
    return report.exitCode;
  }
}
