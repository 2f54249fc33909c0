import { type ScalingPolicy, type ScalingPolicyInput, scalingPolicySchema } from "./policy.ts";

export const PRESET_NAMES = ["balanced", "aggressive", "conservative"] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/**
 * The seed's "scaling strategies" enhancement, as partial policy inputs over the defaults.
 * - balanced: the defaults (the seed's numbers, HPA's default behavior).
 * - aggressive: availability first — scales out earlier, in bigger and faster steps; scales in like balanced.
 * - conservative: fewer scale events — scales out later and slower, scales in only after long quiet spells.
 */
export const POLICY_PRESETS = {
  balanced: {},
  aggressive: {
    targetCpuPercent: 60,
    targetMemoryPercent: 70,
    targetRequestRate: 800,
    scaleUpThreshold: 65,
    scaleDownThreshold: 25,
    scaleUpCooldownSeconds: 30,
    scaleDownCooldownSeconds: 300,
    scaleUpStep: 2,
    scaleDownStep: 1,
    behavior: {
      scaleUp: {
        stabilizationWindowSeconds: 0,
        selectPolicy: "Max",
        policies: [
          { type: "Pods", value: 8, periodSeconds: 15 },
          { type: "Percent", value: 200, periodSeconds: 15 },
        ],
        tolerance: 0.05,
      },
    },
  },
  conservative: {
    targetCpuPercent: 80,
    targetMemoryPercent: 85,
    targetRequestRate: 1200,
    scaleUpThreshold: 90,
    scaleDownThreshold: 20,
    scaleUpCooldownSeconds: 180,
    scaleDownCooldownSeconds: 900,
    scaleUpStep: 1,
    scaleDownStep: 1,
    behavior: {
      scaleUp: {
        stabilizationWindowSeconds: 60,
        selectPolicy: "Max",
        policies: [{ type: "Pods", value: 2, periodSeconds: 60 }],
        tolerance: 0.15,
      },
      scaleDown: {
        stabilizationWindowSeconds: 600,
        selectPolicy: "Max",
        policies: [{ type: "Pods", value: 1, periodSeconds: 120 }],
        tolerance: 0.15,
      },
    },
  },
} as const satisfies Record<PresetName, ScalingPolicyInput>;

/** Same object, under the name the engine's brief uses. */
export const presets: Record<PresetName, ScalingPolicyInput> = POLICY_PRESETS;

/**
 * A full policy from a preset plus overrides. Overrides replace top-level fields, except `behavior`
 * (merged per direction, field by field) and `stepScaling` (merged field by field).
 * Throws the ZodError of the merged input when it is invalid.
 */
export function policyFromPreset(name: PresetName, overrides: ScalingPolicyInput = {}): ScalingPolicy {
  const base: ScalingPolicyInput = POLICY_PRESETS[name];
  const merged: ScalingPolicyInput = { ...base, ...overrides };
  if (base.behavior !== undefined || overrides.behavior !== undefined) {
    merged.behavior = {
      scaleUp: { ...base.behavior?.scaleUp, ...overrides.behavior?.scaleUp },
      scaleDown: { ...base.behavior?.scaleDown, ...overrides.behavior?.scaleDown },
    };
  }
  if (base.stepScaling !== undefined || overrides.stepScaling !== undefined) {
    merged.stepScaling = { ...base.stepScaling, ...overrides.stepScaling };
  }
  return scalingPolicySchema.parse(merged);
}
