import { z } from "zod";

/**
 * What PostgreSQL can store, as schema pieces: every string and integer a boundary schema accepts ends up in a
 * `text`, `jsonb` or `integer` column (or is compared with one), so each is bounded here, in one place, by what
 * that column holds. A value past these bounds is a 400 naming the field and the rule, never a database error.
 */

/** PostgreSQL `integer`: 4 bytes, signed. Every count, step and duration that lands in such a column is ≤ this. */
export const PG_INTEGER_MAX = 2_147_483_647;

/** Every control character (Unicode category Cc: C0 U+0000–U+001F, DEL U+007F, C1 U+0080–U+009F). */
const CONTROL = /\p{Cc}/u;
/** The same, less tab, line feed and carriage return. */
const CONTROL_EXCEPT_WHITESPACE = /(?![\t\n\r])\p{Cc}/u;
/** A UTF-16 surrogate not part of a pair: no UTF-8 encoding exists, so neither text nor jsonb can hold it. */
const UNPAIRED_SURROGATE = /\p{Cs}/u;

export const CONTROL_CHARACTER_RULE =
  "must not contain control characters (NUL included: U+0000–U+001F, U+007F–U+009F)";
export const MULTILINE_CONTROL_CHARACTER_RULE =
  "must not contain control characters other than tab, line feed and carriage return (NUL included: U+0000–U+001F, U+007F–U+009F)";
export const UNICODE_RULE = "must be well-formed Unicode (no unpaired surrogate)";

/**
 * The one rule for text a boundary accepts, by what PostgreSQL stores: `text` cannot hold NUL (U+0000), `jsonb`
 * refuses `\u0000`, and neither can hold an unpaired surrogate. Beyond what it must, ProxyScale refuses every
 * other control character too (C0, DEL and C1): in a name, label, id, URL, header value or secret (`line`, the
 * default) none has a meaning and each hides in a log or a UI; free text (`multiline`: a reason, an actuator's
 * error, a command argument or environment value) keeps tab, line feed and carriage return.
 */
export function storableText(kind: "line" | "multiline" = "line") {
  return storable(z.string(), kind);
}

/** `schema` (a string schema: plain, a URL, ...) with storableText's rule added. */
export function storable<T extends z.ZodType<string>>(schema: T, kind: "line" | "multiline" = "line"): T {
  const control = kind === "line" ? CONTROL : CONTROL_EXCEPT_WHITESPACE;
  const rule = kind === "line" ? CONTROL_CHARACTER_RULE : MULTILINE_CONTROL_CHARACTER_RULE;
  return schema
    .refine((value) => !control.test(value), { message: rule, abort: true })
    .refine((value) => !UNPAIRED_SURROGATE.test(value), { message: UNICODE_RULE, abort: true });
}

/** True when `value` passes `storableText(kind)`: for text that reaches the database by another path. */
export function isStorableText(value: string, kind: "line" | "multiline" = "line"): boolean {
  return storableText(kind).safeParse(value).success;
}

/**
 * A measurement (a rate, a latency, a custom metric) stored as `double precision` and summed by rollups and range
 * reads: at most 1e15, so the sum of any number of them stays finite (two samples of 1e308 made every range read
 * of their proxy a 500 "value out of range: overflow"). No real rate or latency comes near it.
 */
export const MAX_MEASUREMENT = 1e15;

export function storableMeasurement() {
  return z
    .number()
    .min(0, { message: "must not be negative" })
    .max(MAX_MEASUREMENT, { message: "must be at most 1e15 (sums of samples must stay finite)" });
}

/** The last instant an ISO 8601 timestamp with a 4-digit year names (9999-12-31T23:59:59.999Z), in epoch ms. */
export const MAX_EPOCH_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** A time as epoch milliseconds, from 1970 to the end of year 9999: what timestamptz and ISO 8601 both carry. */
export function storableEpochMs() {
  return z
    .number()
    .int({ message: "must be epoch milliseconds" })
    .min(0, { message: "must be epoch milliseconds" })
    .max(MAX_EPOCH_MS, { message: `must be at most ${MAX_EPOCH_MS} (the end of year 9999)` });
}

/** An ISO 8601 time with an offset, not before 1970 (epoch ms are never negative here). */
export function storableIsoTime() {
  return z.iso
    .datetime({ offset: true })
    .refine((value) => Date.parse(value) >= 0, { message: "must not be before 1970-01-01T00:00:00Z" });
}

/** An integer a PostgreSQL `integer` column holds, at least `min`, at most `max` (≤ PG_INTEGER_MAX). */
export function storableInteger(min: number, max: number = PG_INTEGER_MAX) {
  return z
    .number()
    .int({ message: "must be an integer" })
    .min(min, { message: min === 0 ? "must be ≥ 0" : `must be ≥ ${min}` })
    .max(Math.min(max, PG_INTEGER_MAX), {
      message: `must be at most ${Math.min(max, PG_INTEGER_MAX)}${max >= PG_INTEGER_MAX ? " (a PostgreSQL integer)" : ""}`,
    });
}
