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
