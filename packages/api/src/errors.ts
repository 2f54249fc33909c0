import {
  CapExceededError,
  ConflictError,
  InvalidInputError,
  isDatabaseUnavailable,
  NotFoundError,
} from "@proxyscale/db";
import { TRPCError } from "@trpc/server";
import { type ZodError, ZodRealError, z } from "zod";

/** A zod issue as clients see it: `field` is the dotted path ("behavior.scaleUp.tolerance"), `""` for the body itself. */
export const apiIssueSchema = z.object({
  field: z.string().meta({ example: "cpuPercent" }),
  path: z.array(z.union([z.string(), z.number().int()])),
  code: z.string(),
  message: z.string(),
});
export type ApiIssue = z.output<typeof apiIssueSchema>;

/** The JSON body of every REST error (the OpenAPI document's ApiError). `zodIssues` names each invalid field. */
export const restErrorBodySchema = z.object({
  code: z.string().meta({ example: "BAD_REQUEST" }),
  message: z.string(),
  httpStatus: z.number().int(),
  zodIssues: z.array(apiIssueSchema).optional(),
});

/** One entry per offending field; an unknown-keys issue becomes one entry per unknown key, named by it. */
export function toApiIssues(error: ZodError): ApiIssue[] {
  return error.issues.flatMap((issue): ApiIssue[] => {
    const path = issue.path.map((key) => (typeof key === "symbol" ? String(key) : key));
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        field: [...path, key].join("."),
        path: [...path, key],
        code: issue.code,
        message: "is not a known field",
      }));
    }
    return [{ field: path.join("."), path, code: issue.code, message: issue.message }];
  });
}

export function describeIssues(issues: ApiIssue[]): string {
  return `Invalid input: ${issues.map((issue) => (issue.field ? `${issue.field}: ${issue.message}` : issue.message)).join("; ")}`;
}

/**
 * A 400 for a rule that needs the database to check (e.g. a replica count outside the effective policy).
 * It is shaped as a zod error so clients read it exactly like a schema failure.
 */
export function inputError(field: string, message: string, input?: unknown): TRPCError {
  const path = field.split(".");
  return new TRPCError({
    code: "BAD_REQUEST",
    message,
    cause: new ZodRealError([{ code: "custom", path, message, input }]),
  });
}

export function notFound(what: string, id: string): TRPCError {
  return new TRPCError({ code: "NOT_FOUND", message: `${what} ${id} not found` });
}

/** Maps the db package's errors (and driver connection failures) to tRPC codes; other errors pass through. */
export function mapDomainError(error: TRPCError): TRPCError {
  const cause = error.cause;
  if (cause instanceof NotFoundError)
    return new TRPCError({ code: "NOT_FOUND", message: cause.message, cause });
  if (cause instanceof ConflictError)
    return new TRPCError({ code: "CONFLICT", message: cause.message, cause });
  if (cause instanceof CapExceededError)
    return new TRPCError({ code: "FORBIDDEN", message: cause.message, cause });
  if (cause instanceof InvalidInputError)
    return new TRPCError({ code: "BAD_REQUEST", message: cause.message, cause });
  if (error.code === "INTERNAL_SERVER_ERROR" && isDatabaseUnavailable(cause)) {
    return new TRPCError({ code: "SERVICE_UNAVAILABLE", message: "database is unreachable", cause });
  }
  return error;
}
