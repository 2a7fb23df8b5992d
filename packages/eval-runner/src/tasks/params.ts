import { RazorkvError } from "@razorkv/core";

/** Parameter checks shared by the task generators; errors name the task and the parameter. */

export function positiveIntegers(task: string, name: string, values: readonly number[] | undefined): number[] {
  if (!Array.isArray(values) || values.length === 0) {
    throw new RazorkvError(`${task}: parameter "${name}" must be a non-empty list of positive integers`);
  }
  for (const v of values) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new RazorkvError(`${task}: parameter "${name}" must hold positive integers; found ${JSON.stringify(v)}`);
    }
  }
  return values.slice();
}

export function positiveInteger(task: string, name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) {
    throw new RazorkvError(`${task}: parameter "${name}" must be a positive integer; found ${JSON.stringify(value)}`);
  }
  return v;
}

export function depthList(task: string, values: readonly number[] | undefined): number[] {
  if (!Array.isArray(values) || values.length === 0) {
    throw new RazorkvError(`${task}: parameter "depths" must be a non-empty list of numbers in [0, 1]`);
  }
  for (const d of values) {
    if (typeof d !== "number" || !(d >= 0 && d <= 1)) {
      throw new RazorkvError(`${task}: parameter "depths" must hold numbers in [0, 1]; found ${JSON.stringify(d)}`);
    }
  }
  return values.slice();
}

/** Depth as it appears in sample ids: at most 4 decimals, no float noise ("0.3333", "0.25", "1"). */
export function depthLabel(depth: number): string {
  return String(Math.round(depth * 10000) / 10000);
}
