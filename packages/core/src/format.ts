/** Short number for sentences: whole numbers as they are, others rounded to `digits` decimals. */
export function formatNumber(value: number, digits = 1): string {
  if (Number.isInteger(value)) return String(value);
  const scale = digits === 1 ? 10 : 10 ** digits;
  return String(Math.round(value * scale) / scale);
}

/** "1 replica" / "3 replicas". */
export function replicas(count: number): string {
  return count === 1 ? "1 replica" : `${count} replicas`;
}

/** "14:05 UTC", "13:05 CET", "07:05 GMT-5": the time of day in `timeZone`, with the zone's short name. */
export function formatClockTime(at: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
  }).format(at);
}
