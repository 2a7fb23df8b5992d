/**
 * Self-describing policy parameters. A policy package declares each parameter once, with its default and the
 * reason it exists (`doc`); the same declaration validates what a manifest passes, fills in defaults, types the
 * parsed object, and documents the parameter (`razorkv` can print it). This is kvpress's documented dataclass,
 * without a dependency.
 */
import { RazorkvError } from "./errors.js";

export interface NumberParam {
  readonly kind: "number";
  readonly default: number;
  /** Why the parameter exists and where its default comes from (paper, equation, table). */
  readonly doc: string;
  readonly integer?: boolean;
  /** Inclusive bounds. */
  readonly min?: number;
  readonly max?: number;
  /** Extra constraint: a message saying what is expected, or null when `value` is acceptable. */
  readonly check?: (value: number) => string | null;
}

export interface BooleanParam {
  readonly kind: "boolean";
  readonly default: boolean;
  readonly doc: string;
}

export interface ChoiceParam<T extends string = string> {
  readonly kind: "choice";
  readonly choices: readonly T[];
  readonly default: T;
  readonly doc: string;
}

/** Anything else (a file path or an inline object, say): `parse` returns the value or throws saying what it expected. */
export interface CustomParam<T = unknown> {
  readonly kind: "custom";
  readonly default: T;
  readonly doc: string;
  readonly parse: (value: unknown) => T;
}

export type ParamSpec = NumberParam | BooleanParam | ChoiceParam<string> | CustomParam<any>;
export type ParamsSchema = { readonly [name: string]: ParamSpec };

/** The parsed parameters a schema describes. */
export type ParamsOf<S extends ParamsSchema> = {
  readonly [K in keyof S]: S[K] extends NumberParam
    ? number
    : S[K] extends BooleanParam
      ? boolean
      : S[K] extends ChoiceParam<infer T>
        ? T
        : S[K] extends CustomParam<infer U>
          ? U
          : never;
};

/** Constructors that keep literal types (choices) without `as const` at every call site. */
export const param = {
  number(spec: Omit<NumberParam, "kind">): NumberParam {
    return { kind: "number", ...spec };
  },
  integer(spec: Omit<NumberParam, "kind" | "integer">): NumberParam {
    return { kind: "number", integer: true, ...spec };
  },
  boolean(spec: Omit<BooleanParam, "kind">): BooleanParam {
    return { kind: "boolean", ...spec };
  },
  choice<const T extends string>(spec: { choices: readonly T[]; default: NoInfer<T>; doc: string }): ChoiceParam<T> {
    return { kind: "choice", ...spec };
  },
  custom<T>(spec: Omit<CustomParam<T>, "kind">): CustomParam<T> {
    return { kind: "custom", ...spec };
  },
};

export function defaultParams<S extends ParamsSchema>(schema: S): ParamsOf<S> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema)) out[name] = spec.default;
  return out as ParamsOf<S>;
}

/**
 * Validates `input` (a manifest's `params` object, or undefined for all defaults) against `schema`.
 * `where` names the source in errors, e.g. "@razorkv/policy-snapkv" or "experiments/x.yaml: policies[2]".
 */
export function parseParams<S extends ParamsSchema>(schema: S, input: unknown, where: string): ParamsOf<S> {
  if (input === undefined || input === null) return defaultParams(schema);
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new RazorkvError(`${where}: params must be an object of named parameters, got ${describe(input)}`);
  }
  const given = input as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (!Object.hasOwn(schema, name)) {
      const known = Object.keys(schema);
      throw new RazorkvError(
        `${where}: unknown parameter "${name}"; ${known.length ? `known parameters: ${known.join(", ")}` : "this policy takes no parameters"}`,
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema)) {
    const value = given[name];
    out[name] = value === undefined ? spec.default : parseOne(spec, value, `${where}: params.${name}`);
  }
  return out as ParamsOf<S>;
}

function parseOne(spec: ParamSpec, value: unknown, field: string): unknown {
  switch (spec.kind) {
    case "number": {
      const what = spec.integer ? "an integer" : "a number";
      const range = rangeText(spec);
      if (typeof value !== "number" || !Number.isFinite(value) || (spec.integer && !Number.isInteger(value))) {
        throw new RazorkvError(`${field}: expected ${what}${range}, got ${describe(value)}`);
      }
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        throw new RazorkvError(`${field}: expected ${what}${range}, got ${value}`);
      }
      const problem = spec.check?.(value);
      if (problem) throw new RazorkvError(`${field}: ${problem}, got ${value}`);
      return value;
    }
    case "boolean":
      if (typeof value !== "boolean") throw new RazorkvError(`${field}: expected true or false, got ${describe(value)}`);
      return value;
    case "choice":
      if (typeof value !== "string" || !spec.choices.includes(value)) {
        throw new RazorkvError(`${field}: expected one of ${spec.choices.map((c) => `"${c}"`).join(", ")}, got ${describe(value)}`);
      }
      return value;
    case "custom":
      try {
        return spec.parse(value);
      } catch (error) {
        throw new RazorkvError(`${field}: ${error instanceof Error ? error.message : String(error)}`);
      }
  }
}

function rangeText(spec: NumberParam): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` in [${spec.min}, ${spec.max}]`;
  if (spec.min !== undefined) return ` ≥ ${spec.min}`;
  if (spec.max !== undefined) return ` ≤ ${spec.max}`;
  return "";
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  if (typeof value === "object") return "an object";
  return String(value);
}
