/**
 * Model references → files on disk (DESIGN §5).
 *
 * Accepted forms:
 *   hf:<org>/<name>@<40-hex revision>:<file>   one file of a Hub repository (a .gguf)
 *   hf:<org>/<name>@<40-hex revision>          a repository snapshot with config.json + *.safetensors
 *   a path to a .gguf file, or to a directory with config.json + *.safetensors (+ tokenizer.json)
 *   an alias from aliases.ts
 *
 * Hub files live in the standard hub cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else ~/.cache/huggingface/hub, as
 * @huggingface/hub computes it): models--<org>--<name>/snapshots/<revision>/<file>. Revisions are pinned commits,
 * so a file present there is the file, and nothing touches the network. A missing file is fetched through
 * @huggingface/hub (giving up quickly when the hub does not answer), unless `HF_HUB_OFFLINE` is set.
 *
 * @huggingface/hub is imported only to download: loading it costs about 11 MB of resident memory (it brings
 * @huggingface/tasks), which a run from the cache or from a path does not need. So the cache layout is computed
 * here, by the library's rules (resolve.test.ts checks the two agree).
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { CACHE_SEEDERS, aliasTarget, knownAliases } from "./aliases.js";
import { ModelFileError, ModelNotFoundError, ModelRefError, oneLine } from "./formats/errors.js";

export type ModelFormat = "gguf" | "safetensors";

export interface HubRef {
  readonly kind: "hf";
  /** `<org>/<name>` */
  readonly repo: string;
  /** 40-hex commit, lower case. */
  readonly revision: string;
  /** File inside the repository; absent for a safetensors snapshot. */
  readonly file?: string;
}

export interface LocalRef {
  readonly kind: "local";
  /** Absolute path. */
  readonly path: string;
}

export type ParsedModelRef = (HubRef | LocalRef) & {
  /** The reference as written by the caller. */
  readonly text: string;
  /** The alias the reference was, when it was one. */
  readonly alias?: string;
};

export interface ResolvedModel {
  readonly ref: string;
  readonly parsed: ParsedModelRef;
  /** A .gguf file, or a directory holding config.json and safetensors. */
  readonly path: string;
  readonly format: ModelFormat;
}

export interface ResolveOptions {
  /** Hub cache directory; default `hubCacheDir()` (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  readonly cacheDir?: string;
  /** Never contact the hub; default true when HF_HUB_OFFLINE is set to a true value. */
  readonly offline?: boolean;
  /** How long to wait for the hub to answer a request before giving up; default 10 s. */
  readonly hubTimeoutMs?: number;
  /** fetch used for the hub (tests pass a stub). */
  readonly fetch?: typeof fetch;
}

const HUB_REF = /^hf:([A-Za-z0-9][\w.-]*)\/([\w.-]+)@([^:]*)(?::(.+))?$/;
const REVISION = /^[0-9a-f]{40}$/;
const DEFAULT_HUB_TIMEOUT_MS = 10_000;
/** Files fetched for a safetensors snapshot besides the weights (the tokenizer ones are optional). */
const SNAPSHOT_EXTRAS = ["tokenizer.json", "tokenizer_config.json", "generation_config.json"];

export function acceptedForms(): string {
  return (
    `accepted forms: hf:<org>/<name>@<40-hex revision>[:<file>], a path to a .gguf file, ` +
    `a directory with config.json and *.safetensors, or an alias (${knownAliases().join(", ")})`
  );
}

function refError(ref: string, problem: string): ModelRefError {
  return new ModelRefError(ref, `model reference "${ref}": ${problem}; ${acceptedForms()}`);
}

/** Parses a reference without touching the file system beyond checking whether a bare word is an existing path. */
export function parseModelRef(ref: string): ParsedModelRef {
  const text = ref.trim();
  if (text === "") throw refError(ref, "empty");
  if (text.startsWith("hf:")) return parseHubRef(text, text);

  const target = aliasTarget(text);
  if (target !== undefined) return { ...parseHubRef(target, text), alias: text.toLowerCase() };

  const expanded = text === "~" || text.startsWith("~/") ? join(homedir(), text.slice(1)) : text;
  const looksLikePath =
    /[\\/]/.test(text) || text.startsWith(".") || text.startsWith("~") || /\.(gguf|safetensors|json)$/i.test(text);
  if (looksLikePath || existsSync(expanded)) {
    if (/^[\w.-]+\/[\w.-]+@/.test(text) && !existsSync(expanded)) {
      throw refError(ref, `not an existing path; a Hub reference needs the hf: prefix (hf:${text})`);
    }
    return { kind: "local", path: resolvePath(expanded), text };
  }
  throw refError(ref, "not an alias, a Hub reference or a path");
}

function parseHubRef(text: string, original: string): HubRef & { text: string } {
  const match = HUB_REF.exec(text);
  if (match === null) throw refError(original, `malformed Hub reference ${text}`);
  const [, org, name, revision, file] = match;
  if (!REVISION.test(revision.toLowerCase())) {
    throw refError(
      original,
      `revision "${revision}" is not a 40-hex commit (references are pinned so that results are reproducible)`,
    );
  }
  const ref: HubRef & { text: string } = {
    kind: "hf",
    repo: `${org}/${name}`,
    revision: revision.toLowerCase(),
    text: original,
  };
  if (file === undefined) return ref;
  if (file.split(/[\\/]/).some((part) => part === ".." || part === "") || file.startsWith("/")) {
    throw refError(original, `file "${file}" must be a relative path inside the repository`);
  }
  return { ...ref, file };
}

/** Resolves a reference to a local file or directory, fetching Hub files into the cache when they are missing. */
export async function resolveModelRef(ref: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const parsed = parseModelRef(ref);
  if (parsed.kind === "local") return { ref, parsed, ...resolveLocal(parsed.path, ref) };
  return { ref, parsed, ...(await resolveHub(parsed, options)) };
}

/**
 * The hub cache directory references resolve through: `options.cacheDir`, else @huggingface/hub's
 * getHFHubCachePath() rules: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 */
export function hubCacheDir(options: ResolveOptions = {}): string {
  const env = process.env;
  return (
    options.cacheDir ??
    env["HF_HUB_CACHE"] ??
    env["HUGGINGFACE_HUB_CACHE"] ??
    join(env["HF_HOME"] ?? join(env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "huggingface"), "hub")
  );
}

/**
 * Where a Hub file lives in the cache: <cache>/models--<org>--<name>/snapshots/<revision>/<file> (the folder name is
 * @huggingface/hub's getRepoFolderName for a model repository).
 */
export function hubSnapshotPath(repo: string, revision: string, file?: string, options: ResolveOptions = {}): string {
  const snapshot = join(hubCacheDir(options), ["models", ...repo.split("/")].join("--"), "snapshots", revision);
  return file === undefined ? snapshot : join(snapshot, file);
}

function resolveLocal(path: string, ref: string): { path: string; format: ModelFormat } {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new ModelNotFoundError(ref, `model reference "${ref}": no such file or directory ${path}`);
  }
  if (stats.isFile()) {
    if (/\.gguf$/i.test(path)) return { path, format: "gguf" };
    if (/\.safetensors$/i.test(path) || basename(path) === "config.json" || basename(path).endsWith(".index.json")) {
      return resolveLocal(dirname(path), ref);
    }
    throw new ModelFileError(path, `not a model file: expected a .gguf file or a directory with config.json and *.safetensors`);
  }
  if (!existsSync(join(path, "config.json"))) {
    const ggufs = readdirSync(path).filter((f) => f.endsWith(".gguf"));
    const hint = ggufs.length > 0 ? ` (it holds ${ggufs.join(", ")}: pass the file itself)` : "";
    throw new ModelFileError(path, `directory has no config.json, so it is not a safetensors model${hint}`);
  }
  return { path, format: "safetensors" };
}

async function resolveHub(
  ref: HubRef & { text: string },
  options: ResolveOptions,
): Promise<{ path: string; format: ModelFormat }> {
  if (ref.file !== undefined) {
    if (!/\.gguf$/i.test(ref.file)) {
      throw refError(ref.text, `file "${ref.file}" is not a .gguf file (name no file to load a safetensors snapshot)`);
    }
    const path = await hubFile(ref, ref.file, options, true);
    return { path, format: "gguf" };
  }

  const snapshot = hubSnapshotPath(ref.repo, ref.revision, undefined, options);
  if (!existsSync(join(snapshot, "config.json"))) {
    const ggufs = existsSync(snapshot) ? readdirSync(snapshot).filter((f) => f.endsWith(".gguf")) : [];
    if (ggufs.length > 0) {
      throw refError(ref.text, `the snapshot holds GGUF files (${ggufs.join(", ")}): name one with :<file>`);
    }
  }
  await hubFile(ref, "config.json", options, true);
  const index = await hubFile(ref, "model.safetensors.index.json", options, false);
  if (index !== undefined) {
    let weightMap: Record<string, string>;
    try {
      weightMap = (JSON.parse(readFileSync(index, "utf8")) as { weight_map?: Record<string, string> }).weight_map ?? {};
    } catch (err) {
      throw new ModelFileError(index, `not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    for (const shard of new Set(Object.values(weightMap))) await hubFile(ref, shard, options, true);
  } else {
    await hubFile(ref, "model.safetensors", options, true);
  }
  for (const extra of SNAPSHOT_EXTRAS) await hubFile(ref, extra, options, false);
  return { path: snapshot, format: "safetensors" };
}

/**
 * One file of a pinned Hub revision: from the cache when it is there, else through @huggingface/hub. Returns
 * undefined for a missing optional file; throws ModelNotFoundError for a missing required one.
 */
async function hubFile(
  ref: HubRef & { text: string },
  file: string,
  options: ResolveOptions,
  required: true,
): Promise<string>;
async function hubFile(
  ref: HubRef & { text: string },
  file: string,
  options: ResolveOptions,
  required: false,
): Promise<string | undefined>;
async function hubFile(
  ref: HubRef & { text: string },
  file: string,
  options: ResolveOptions,
  required: boolean,
): Promise<string | undefined> {
  const cached = hubSnapshotPath(ref.repo, ref.revision, file, options);
  if (existsSync(cached)) return cached;

  let reason: string;
  if (options.offline === true) {
    reason = "resolution is offline, so the hub was not asked";
  } else if (options.offline === undefined && isTruthy(process.env["HF_HUB_OFFLINE"])) {
    reason = "HF_HUB_OFFLINE is set, so the hub was not asked";
  } else {
    try {
      const token = process.env["HF_TOKEN"];
      const { downloadFileToCacheDir } = await import("@huggingface/hub");
      return await downloadFileToCacheDir({
        repo: { type: "model", name: ref.repo },
        path: file,
        revision: ref.revision,
        cacheDir: hubCacheDir(options),
        fetch: withAnswerTimeout(options.hubTimeoutMs ?? DEFAULT_HUB_TIMEOUT_MS, options.fetch ?? fetch),
        ...(token ? { accessToken: token as `hf_${string}` } : {}),
      });
    } catch (err) {
      reason = `the hub could not provide it (${describeError(err)})`;
    }
  }
  if (!required) return undefined;

  const seeder = CACHE_SEEDERS[ref.repo];
  const howTo = [
    ...(seeder !== undefined
      ? [`run ${seeder} from the repository root (it seeds the cache on machines without hub access)`]
      : []),
    `download it with \`huggingface-cli download ${ref.repo} ${file} --revision ${ref.revision}\``,
    "pass a local path instead",
  ];
  throw new ModelNotFoundError(
    ref.text,
    `model reference "${ref.text}": ${file} is not in the Hugging Face cache (looked for ${cached}) and ${reason}; ` +
      `to provide it, ${howTo.join(", or ")}`,
  );
}

/** Aborts a request whose response headers do not arrive within `ms` (the body itself may take longer). */
function withAnswerTimeout(ms: number, base: typeof fetch): typeof fetch {
  return async (input, init) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${ms} ms`)), ms);
    const signal = init?.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal;
    try {
      return await base(input, { ...init, signal });
    } finally {
      clearTimeout(timer);
    }
  };
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return oneLine(String(err));
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return oneLine(`${err.message}${cause}`).slice(0, 300);
}

function isTruthy(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}
