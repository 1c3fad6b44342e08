/**
 * Checkpoints: a pytree of tensors (params, optimizer state, step counters) saved to one
 * safetensors file, named by dotted paths (`params.layers.0.w`), written atomically, and
 * loaded back either as saved or checked against a template tree.
 *
 * Non-tensor leaves (numbers, strings, booleans, `null`, `undefined`) and the tree's exact
 * structure travel in the `__metadata__` entry `longseq.tree`, so a loaded tree equals the
 * saved one; files written by other tools (no such entry) load as nested objects.
 * @module
 */
import type { DeviceName } from "../kernels/device.ts";
import { fromTypedArray, zeros } from "../ops/creation.ts";
import { fmt, Tensor } from "../ops/tensor.ts";
import { flattenTree, type TreeDef, unflattenTree } from "../autodiff/pytree.ts";
import {
  buildSafetensorsHeader,
  cannotHold,
  type DecodeOptions,
  type HeaderEntry,
  hostTensorFromBytes,
  loadedDtype,
  toLittleEndian,
} from "./safetensors.ts";
import {
  checkTreeShape,
  leafMismatch,
  leafNames,
  planFromNames,
  restoreLeaf,
  showPath,
  type StoredLeaf,
  type StoredTree,
  storeLeaf,
  validateStoredTree,
} from "./checkpoint_tree.ts";
import { readHeader, readRange, removeStaleTemps, tempPathFor } from "./checkpoint_file.ts";

export { MAX_TREE_DEPTH, MAX_TREE_NODES } from "./checkpoint_tree.ts";
export { STALE_TEMP_MS } from "./checkpoint_file.ts";

/** The metadata key holding the tree structure and non-tensor leaves. */
export const TREE_METADATA_KEY = "longseq.tree";

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** String metadata stored in the header, e.g. `{ config: JSON.stringify(config) }`. */
  metadata?: Record<string, string>;
}

/**
 * Options of {@linkcode loadCheckpoint}. `castTo: "f32"` converts F16, BF16 and F64 tensors
 * (common in files from other tools) to f32; without it F16 loads as f16 and the others make
 * the load throw.
 */
export interface LoadCheckpointOptions<T> extends DecodeOptions {
  /** A tree of the expected structure; every tensor's name, dtype and shape is checked. */
  like?: T;
  /** Device for the loaded tensors (default: the one chosen by `init`). */
  device?: DeviceName;
}

/** What {@linkcode loadCheckpoint} returns. */
export interface LoadedCheckpoint<T> {
  /** The saved tree, with tensors on the requested device (the caller owns them). */
  tree: T;
  /** The user metadata given to {@linkcode saveCheckpoint}. */
  metadata: Record<string, string>;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

/**
 * Saves a pytree to `path` as safetensors, atomically: the file is written to
 * `path.tmp-<random>`, synced to disk and renamed over `path`, so a crash or error leaves the
 * old file intact (and the temporary file is removed on error). Temporary files of `path` left
 * by a killed save (unchanged for {@linkcode STALE_TEMP_MS}) are removed first. A cyclic tree,
 * or one nested deeper than {@linkcode MAX_TREE_DEPTH}, throws a TypeError naming the path.
 * Tensors are read back one at a time (`await t.data()`); keep them alive until the promise
 * settles.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCheckpoint, saveCheckpoint, type Tensor, tensor } from "@longseq/tensor";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveCheckpoint(path, { w: tensor([1, 2]), step: 3 }, { metadata: { note: "demo" } });
 * const { tree, metadata } = await loadCheckpoint<{ w: Tensor; step: number }>(path);
 * assert.equal(tree.step, 3);
 * assert.equal(metadata.note, "demo");
 * assert.deepEqual(await tree.w.array(), [1, 2]);
 * await Deno.remove(path);
 * ```
 */
export async function saveCheckpoint(
  path: string,
  tree: unknown,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  const op = "saveCheckpoint";
  const metadata = { ...options.metadata };
  if (TREE_METADATA_KEY in metadata) {
    throw new TypeError(`${op}: the metadata key ${JSON.stringify(TREE_METADATA_KEY)} is reserved`);
  }
  checkTreeShape(op, tree);
  const [leaves, def] = flattenTree(tree);
  const names = leafNames(def);
  const stored = leaves.map((leaf, i) => storeLeaf(leaf, names[i]));
  const tensors: [string, Tensor][] = [];
  const seen = new Set<string>();
  leaves.forEach((leaf, i) => {
    if (seen.has(names[i])) {
      throw new TypeError(`${op}: two leaves are named ${JSON.stringify(names[i])}`);
    }
    seen.add(names[i]);
    if (leaf instanceof Tensor) tensors.push([names[i], leaf]);
  });
  metadata[TREE_METADATA_KEY] = JSON.stringify({ def, leaves: stored });
  const { header } = buildSafetensorsHeader(
    tensors.map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    metadata,
  );
  await removeStaleTemps(path);
  const tmp = tempPathFor(path);
  let file: Deno.FsFile | null = await Deno.open(tmp, { write: true, createNew: true });
  try {
    await writeAll(file, header);
    // Start every readback at once: one GPU round trip for the whole tree instead of one per
    // tensor. Failures are reported below, in order, naming the tensor.
    const reads = tensors.map(([, t]) => t.data());
    for (const r of reads) r.catch(() => {});
    for (const [i, [name, t]] of tensors.entries()) {
      let data;
      try {
        data = await reads[i];
      } catch (e) {
        throw new Error(
          `${op}: cannot read tensor ${JSON.stringify(name)} (${t.dtype}${fmt(t.shape)}): ${
            (e as Error).message
          }`,
          { cause: e },
        );
      }
      await writeAll(file, toLittleEndian(data));
    }
    await file.sync();
    file.close();
    file = null;
    await Deno.rename(tmp, path);
  } catch (e) {
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDirectory(path);
}

/** Makes the rename durable; best effort, since not every platform can sync a directory. */
async function syncDirectory(path: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  try {
    using d = await Deno.open(dir, { read: true });
    await d.sync();
  } catch {
    // Directories cannot be opened or synced on some platforms (Windows); the rename stands.
  }
}

function describe(e: HeaderEntry): string {
  return `${e.dtype ?? e.format}${fmt(e.shape)}`;
}

/**
 * Loads a checkpoint written by {@linkcode saveCheckpoint} (or any safetensors file with
 * dtypes F32, F16, I32, U32 or BOOL, plus BF16 and F64 with `castTo: "f32"`). The header is
 * read and validated first (its length against the file size, then the `longseq.tree`
 * description: node kinds, depth at most {@linkcode MAX_TREE_DEPTH}, one stored value per
 * leaf), then only the tensors' byte ranges are read. A truncated file, a bad header, BOOL bytes
 * other than 0 and 1, or (with `like`) a missing, extra or mismatched tensor throws an error
 * naming the file and the tensor or path. With `like`, the result has the template's structure:
 * tensors from the file, other leaves from the file when it stored them (checked against the
 * template leaf: same type; for a number template, finite / safe integer / non-negative when
 * the template is), else from the template. The only change on disk: stale temporary files of a
 * killed save of `path` are removed (see {@linkcode saveCheckpoint}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadCheckpoint, saveCheckpoint, tensor, zeros } from "@longseq/tensor";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await saveCheckpoint(path, { w: tensor([[1, 2]]) });
 * const { tree } = await loadCheckpoint(path, { like: { w: zeros([1, 2]) } });
 * assert.deepEqual(await tree.w.array(), [[1, 2]]);
 * await Deno.remove(path);
 * ```
 */
export async function loadCheckpoint<T = unknown>(
  path: string,
  options: LoadCheckpointOptions<T> = {},
): Promise<LoadedCheckpoint<T>> {
  const op = "loadCheckpoint";
  await removeStaleTemps(path);
  let file: Deno.FsFile;
  let size: number;
  try {
    file = await Deno.open(path, { read: true });
    size = (await file.stat()).size;
  } catch (e) {
    throw new Error(`${op}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    return await loadFrom(file, size, path, options);
  } finally {
    file.close();
  }
}

async function loadFrom<T>(
  file: Deno.FsFile,
  size: number,
  path: string,
  options: LoadCheckpointOptions<T>,
): Promise<LoadedCheckpoint<T>> {
  const op = "loadCheckpoint";
  const { castTo } = options;
  let header;
  try {
    header = await readHeader(file, size);
  } catch (e) {
    throw new RangeError(`${op}: ${path}: ${(e as Error).message.replace(/^safetensors: /, "")}`);
  }
  const { entries, dataStart } = header;
  const { [TREE_METADATA_KEY]: treeJson, ...metadata } = header.metadata;
  const byName = new Map(entries.map((e) => [e.name, e]));
  const bad = (msgs: string[]): never => {
    const more = msgs.length > 6 ? `\n  … and ${msgs.length - 6} more` : "";
    throw new RangeError(
      `${op}: ${path} does not match:\n  ${msgs.slice(0, 6).join("\n  ")}${more}`,
    );
  };
  for (const e of entries) if (!loadedDtype(e, castTo)) bad([cannotHold(e, castTo)]);

  let saved: StoredTree | null = null;
  if (treeJson !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(treeJson);
    } catch (e) {
      bad([`metadata ${TREE_METADATA_KEY} is not valid JSON: ${(e as Error).message}`]);
    }
    const checked = validateStoredTree(json);
    if (typeof checked === "string") bad([`metadata ${TREE_METADATA_KEY}: ${checked}`]);
    saved = checked as StoredTree;
  }
  // Plan: the structure and, per leaf, either a tensor entry or a plain value.
  let def: TreeDef;
  let plan: (HeaderEntry | { value: unknown })[];
  if (options.like !== undefined) {
    [def, plan] = planFromTemplate(options.like, byName, saved, bad, castTo);
  } else if (saved) {
    def = saved.def;
    plan = saved.leaves.map((s) => {
      if (!("tensor" in s)) return { value: restoreLeaf(s) };
      return byName.get(s.tensor) ??
        bad([`tensor ${JSON.stringify(s.tensor)} is listed in ${TREE_METADATA_KEY} but missing`]);
    });
    const listed = new Set(saved.leaves.flatMap((s) => ("tensor" in s ? [s.tensor] : [])));
    const extra = entries.filter((e) => !listed.has(e.name));
    if (extra.length) {
      bad(extra.map((e) => `tensor ${JSON.stringify(e.name)} is not in ${TREE_METADATA_KEY}`));
    }
  } else {
    [def, plan] = planFromNames(entries, bad);
  }

  const created: Tensor[] = [];
  try {
    const leaves: unknown[] = [];
    for (const p of plan) {
      if ("value" in p) {
        leaves.push(p.value);
        continue;
      }
      const at = dataStart + p.offsets[0];
      const raw = await readRange(file, at, p.offsets[1] - p.offsets[0]).catch((e) =>
        bad([`tensor ${JSON.stringify(p.name)}: ${(e as Error).message}`])
      );
      let host;
      try {
        host = hostTensorFromBytes(p, raw, { castTo, where: path, fileOffset: at });
      } catch (e) {
        throw new RangeError(`${op}: ${(e as Error).message.replace(/^safetensors: /, "")}`);
      }
      // Uploading zero bytes crashes Deno's WebGPU (queue.writeBuffer panics), so empty
      // tensors are created without an upload.
      const t = raw.length === 0
        ? zeros(p.shape, { dtype: host.dtype, device: options.device })
        : fromTypedArray(host.data, p.shape, host.dtype, options.device);
      created.push(t);
      leaves.push(t);
    }
    return { tree: unflattenTree<T>(def, leaves), metadata };
  } catch (e) {
    created.forEach((t) => t.dispose());
    throw e;
  }
}

function planFromTemplate(
  like: unknown,
  byName: Map<string, HeaderEntry>,
  saved: StoredTree | null,
  bad: (msgs: string[]) => never,
  castTo: "f32" | undefined,
): [TreeDef, (HeaderEntry | { value: unknown })[]] {
  checkTreeShape("loadCheckpoint: like", like);
  const [leaves, def] = flattenTree(like);
  const names = leafNames(def);
  const savedValues = new Map<string, StoredLeaf>();
  const savedNames = saved ? leafNames(saved.def) : [];
  savedNames.forEach((n, i) => savedValues.set(n, saved!.leaves[i]));
  const problems: string[] = [];
  const used = new Set<string>();
  const plan = leaves.map((leaf, i) => {
    const name = names[i];
    const entry = byName.get(name);
    if (!(leaf instanceof Tensor)) {
      const s = savedValues.get(name);
      if (!s) {
        if (
          leaf !== null && leaf !== undefined && savedNames.some((n) => n.startsWith(`${name}.`))
        ) {
          problems.push(`leaf ${showPath(name)}: the file holds a container there`);
        }
        return { value: leaf };
      }
      if ("tensor" in s) {
        if (leaf !== null && leaf !== undefined) {
          problems.push(
            `leaf ${showPath(name)}: the file holds a tensor, expected a ${typeof leaf}`,
          );
        }
        return { value: leaf };
      }
      const value = restoreLeaf(s);
      const why = leafMismatch(leaf, value);
      if (why) problems.push(`leaf ${showPath(name)}: ${why}`);
      return { value };
    }
    const want = `${leaf.dtype}${fmt(leaf.shape)}`;
    if (!entry) {
      problems.push(`tensor ${JSON.stringify(name)} is missing (expected ${want})`);
      return { value: null };
    }
    used.add(name);
    if (loadedDtype(entry, castTo) !== leaf.dtype || fmt(entry.shape) !== fmt(leaf.shape)) {
      problems.push(`tensor ${JSON.stringify(name)}: expected ${want}, found ${describe(entry)}`);
    }
    return entry;
  });
  for (const [name, e] of byName) {
    if (!used.has(name)) {
      problems.push(`tensor ${JSON.stringify(name)} (${describe(e)}) is not in the template`);
    }
  }
  if (problems.length) bad(problems);
  return [def, plan];
}
