/// <reference path="../types/parse-prometheus-text-format.d.ts" />
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import type { ScrapedSeries } from "./mapping.ts";

/** A response that is not Prometheus' text exposition format: the scrape failed, its replica has no sample. */
export class ExpositionError extends Error {
  override readonly name = "ExpositionError";
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** The text format's sample values: a Go float (NaN and ±Inf included). */
const SAMPLE_VALUE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
/** Lines declaring a histogram or summary: see parseExposition. */
const GROUPED_TYPE_LINE = /^#\s+TYPE\s+\S+\s+(?:histogram|summary)\s*$/gim;

function sampleValue(text: string): number {
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/**
 * Prometheus' text exposition format as flat series, parsed by parse-prometheus-text-format. Two of that
 * library's behaviours are worked around rather than inherited: it folds a histogram's or summary's series into
 * one object per family and loses the labels and the _sum/_count of all but the first label set (Envoy's labelled
 * histograms), so those families' TYPE lines are dropped first and each series stays a series of its own; and it
 * drops the last line when the text lacks a final newline, so one is added. It also takes any line for a sample
 * (an HTML page parses into samples with empty values, which Number() would make 0): every name and value is
 * checked here, and text that yields no sample is refused.
 */
export function parseExposition(text: string): ScrapedSeries[] {
  let families: ReturnType<typeof parsePrometheusTextFormat>;
  try {
    families = parsePrometheusTextFormat(`${text.replace(GROUPED_TYPE_LINE, "")}\n`);
  } catch (error) {
    throw new ExpositionError(`not a Prometheus text exposition: ${(error as Error).message}`);
  }
  const series: ScrapedSeries[] = [];
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) {
      throw new ExpositionError(
        `not a Prometheus text exposition: "${family.name.slice(0, 80)}" is not a metric name`,
      );
    }
    for (const metric of family.metrics) {
      const raw = metric.value ?? "";
      if (!SAMPLE_VALUE.test(raw)) {
        throw new ExpositionError(
          `not a Prometheus text exposition: ${family.name} has the value "${raw.slice(0, 40)}"`,
        );
      }
      series.push({ name: family.name, labels: metric.labels ?? {}, value: sampleValue(raw) });
    }
  }
  if (series.length === 0) throw new ExpositionError("not a Prometheus text exposition: no sample in it");
  return series;
}
