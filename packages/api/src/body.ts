import type { IncomingMessage } from "node:http";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { TRPCError } from "@trpc/server";
import { parse as parseContentType } from "content-type";
import { ZodRealError } from "zod";

/**
 * Reading a JSON request body at the HTTP edge, for REST and tRPC alike: the one place for its size limit (before
 * and after decompression), its deadline, its media type and charset, its encoding and how deep it may nest.
 */

/** Deepest nesting of objects and arrays a request body may have. Every input of the API nests under 10. */
export const MAX_JSON_DEPTH = 64;

/** Content-Encoding values a body may carry: none, or gzip (a reporter's large batches). */
const GZIP_ENCODINGS = new Set(["gzip", "x-gzip"]);

const gunzipAsync = promisify(gunzip);

export interface BodyLimits {
  /** Largest body, as sent and once decompressed. */
  maxBodyBytes: number;
  /** Longest time the whole body may take to arrive, from when this starts reading it; past it, 408. */
  timeoutMs?: number | undefined;
}

/** A TRPCError whose zodIssues name the body (path []) and the rule it broke. */
function bodyError(code: TRPCError["code"], message: string, rule: string): TRPCError {
  return new TRPCError({
    code,
    message,
    cause: new ZodRealError([{ code: "custom", path: [], message: rule, input: undefined }]),
  });
}

/**
 * The media type must be application/json, with no charset or charset=utf-8 (JSON is UTF-8: RFC 8259 §8.1).
 * Throws 415 otherwise. An absent or unparsable header is refused too.
 */
export function checkJsonContentType(header: string | undefined): void {
  let type: string;
  let charset: string | undefined;
  try {
    const parsed = parseContentType(header ?? "");
    type = parsed.type;
    charset = parsed.parameters.charset?.toLowerCase();
  } catch {
    throw bodyError(
      "UNSUPPORTED_MEDIA_TYPE",
      `content-type must be application/json (got ${header ? JSON.stringify(header) : "none"})`,
      "content-type must be application/json",
    );
  }
  if (type !== "application/json") {
    throw bodyError(
      "UNSUPPORTED_MEDIA_TYPE",
      `content-type must be application/json (got ${type})`,
      "content-type must be application/json",
    );
  }
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw bodyError(
      "UNSUPPORTED_MEDIA_TYPE",
      `content-type charset must be utf-8 or absent (got ${charset})`,
      "charset must be utf-8",
    );
  }
}

/** Throws 415 unless the body is sent as is or gzip-compressed; returns whether it is gzip. */
function isGzip(header: string | undefined): boolean {
  const encoding = (header ?? "").trim().toLowerCase();
  if (encoding === "" || encoding === "identity") return false;
  if (GZIP_ENCODINGS.has(encoding)) return true;
  throw bodyError(
    "UNSUPPORTED_MEDIA_TYPE",
    `content-encoding must be gzip or absent (got ${JSON.stringify(header)})`,
    "content-encoding must be gzip or absent",
  );
}

/**
 * Whether `text` nests objects and arrays deeper than `limit`, in one pass that skips string contents. JSON.parse
 * and the schemas then never meet a body deep enough to exhaust the stack.
 */
export function jsonNestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index++) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === 0x5c) index++;
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x7b || char === 0x5b) {
      depth++;
      if (depth > limit) return true;
    } else if (char === 0x7d || char === 0x5d) depth--;
  }
  return false;
}

/** Throws 400 naming the limit when `text` nests deeper than MAX_JSON_DEPTH. */
export function checkJsonDepth(text: string, where = "request body"): void {
  if (jsonNestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw bodyError(
      "BAD_REQUEST",
      `${where} is nested deeper than ${MAX_JSON_DEPTH} levels`,
      `must nest objects and arrays at most ${MAX_JSON_DEPTH} deep`,
    );
  }
}

class BodyTimeoutError extends Error {}

/** The raw bytes, at most `limit` of them, within the deadline. */
async function readRaw(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const limit = limits.maxBodyBytes;
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    throw new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `request body exceeds ${limit} bytes` });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const timedOut =
    limits.timeoutMs === undefined
      ? undefined
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BodyTimeoutError()), limits.timeoutMs);
        });
  const read = (async () => {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        throw new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `request body exceeds ${limit} bytes` });
      }
      chunks.push(chunk);
    }
  })();
  try {
    await (timedOut ? Promise.race([read, timedOut]) : read);
  } catch (error) {
    if (error instanceof BodyTimeoutError) {
      read.catch(() => {});
      throw new TRPCError({
        code: "TIMEOUT",
        message: `request body not received within ${(limits.timeoutMs ?? 0) / 1000} s`,
      });
    }
    // The client went away mid-body: nobody is left to answer, and it is no server error.
    if (
      !(error instanceof TRPCError) &&
      (req.destroyed || (error as { code?: string }).code === "ECONNRESET")
    ) {
      throw new TRPCError({
        code: "CLIENT_CLOSED_REQUEST",
        message: "the client closed the request",
        cause: error,
      });
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return Buffer.concat(chunks);
}

/**
 * The body as checked JSON text ("" when empty): 413 past the size limit (as sent, or once gunzipped), 408 past
 * the deadline, 415 for another media type, charset or encoding, 400 for a gzip header on a body that is not
 * gzip, bytes that are not UTF-8, or nesting deeper than MAX_JSON_DEPTH. It is not parsed here.
 */
export async function readJsonBodyText(req: IncomingMessage, limits: BodyLimits): Promise<string> {
  const gzip = isGzip(req.headers["content-encoding"]);
  let bytes = await readRaw(req, limits);
  if (bytes.length === 0) return "";
  checkJsonContentType(req.headers["content-type"]);
  if (gzip) {
    try {
      bytes = await gunzipAsync(bytes, { maxOutputLength: limits.maxBodyBytes });
    } catch (error) {
      if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new TRPCError({
          code: "PAYLOAD_TOO_LARGE",
          message: `request body exceeds ${limits.maxBodyBytes} bytes once decompressed`,
        });
      }
      throw bodyError(
        "BAD_REQUEST",
        "request body is not valid gzip (content-encoding: gzip)",
        "must be gzip, as content-encoding says",
      );
    }
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw bodyError("BAD_REQUEST", "request body is not valid UTF-8", "must be UTF-8");
  }
  checkJsonDepth(text);
  return text;
}

/**
 * Checks a tRPC request before tRPC's own handler sees it: a query's `input` parameter is held to the same depth
 * limit, and a POST body is read here (with every check above) and left as `req.body`, which tRPC's node adapter
 * takes instead of reading the stream again.
 */
export async function prepareTrpcRequest(
  req: IncomingMessage & { body?: unknown },
  url: URL,
  limits: BodyLimits,
): Promise<void> {
  const input = url.searchParams.get("input");
  if (input !== null) checkJsonDepth(input, "input");
  if (req.method !== "POST") return;
  const text = await readJsonBodyText(req, limits);
  req.body = text === "" ? undefined : text;
}
