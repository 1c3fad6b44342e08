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
  fromLittleEndian,
  type HeaderEntry,
  parseSafetensorsHeader,
  toLittleEndian,
} from "./safetensors.ts";

/** The metadata key holding the tree structure and non-tensor leaves. */
export const TREE_METADATA_KEY = "longseq.tree";

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** String metadata stored in the header, e.g. `{ config: JSON.stringify(config) }`. */
  metadata?: Record<string, string>;
}

/** Options of {@linkcode loadCheckpoint}. */
export interface LoadCheckpointOptions<T> {
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

/** How one leaf is stored in the `longseq.tree` entry. */
type StoredLeaf =
  | { tensor: string }
  | { value: number | string | boolean | null }
  | { number: string }
  | { undefined: true };

/** Dotted names of a structure's leaves, in flattening order. */
function leafNames(def: TreeDef): string[] {
  const out: string[] = [];
  const walk = (d: TreeDef, path: string) => {
    if (d.kind === "leaf") out.push(path === "" ? "root" : path);
    else if (d.kind === "array") {
      d.children.forEach((c, i) => walk(c, path ? `${path}.${i}` : `${i}`));
    } else d.keys.forEach((k, i) => walk(d.children[i], path ? `${path}.${String(k)}` : String(k)));
  };
  walk(def, "");
  return out;
}

function storeLeaf(leaf: unknown, name: string): StoredLeaf {
  if (leaf instanceof Tensor) return { tensor: name };
  if (leaf === undefined) return { undefined: true };
  if (typeof leaf === "number") {
    // JSON has no NaN, Infinity or -0: keep those as text.
    return Number.isFinite(leaf) && !Object.is(leaf, -0)
      ? { value: leaf }
      : { number: Object.is(leaf, -0) ? "-0" : String(leaf) };
  }
  if (leaf === null || typeof leaf === "string" || typeof leaf === "boolean") {
    return { value: leaf };
  }
  throw new TypeError(
    `saveCheckpoint: leaf ${JSON.stringify(name)} is ${
      typeof leaf === "object" ? leaf.constructor?.name ?? "an object" : `a ${typeof leaf}`
    }; ` +
      "only tensors, numbers, strings, booleans, null and undefined can be saved",
  );
}

function restoreLeaf(s: StoredLeaf): unknown {
  if ("undefined" in s) return undefined;
  if ("number" in s) return s.number === "-0" ? -0 : Number(s.number);
  if ("value" in s) return s.value;
  return null;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

/**
 * Saves a pytree to `path` as safetensors, atomically: the file is written to
 * `path.tmp-<random>`, synced to disk and renamed over `path`, so a crash or error leaves the
 * old file intact (and the temporary file is removed on error). Tensors are read back one at a
 * time (`await t.data()`); keep them alive until the promise settles.
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
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
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
 * dtypes F32, I32, U32 or BOOL). The whole file is validated before any tensor is created; a
 * truncated file, a bad header or (with `like`) a missing, extra or mismatched tensor throws
 * an error naming the tensor and the expected and found dtype and shape. Nothing is changed on
 * disk. With `like`, the result has the template's structure: tensors from the file, other
 * leaves from the file when it stored them, else from the template.
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
  let bytes;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`${op}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  let header;
  try {
    header = parseSafetensorsHeader(bytes);
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
  for (const e of entries) {
    if (!e.dtype) {
      bad([
        `tensor ${JSON.stringify(e.name)} has dtype ${e.format}, which this library cannot hold`,
      ]);
    }
  }

  let saved: { def: TreeDef; leaves: StoredLeaf[] } | null = null;
  if (treeJson !== undefined) {
    try {
      saved = JSON.parse(treeJson);
    } catch (e) {
      bad([`metadata ${TREE_METADATA_KEY} is not valid JSON: ${(e as Error).message}`]);
    }
  }
  // Plan: the structure and, per leaf, either a tensor entry or a plain value.
  let def: TreeDef;
  let plan: (HeaderEntry | { value: unknown })[];
  if (options.like !== undefined) {
    [def, plan] = planFromTemplate(options.like, byName, saved, bad);
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
    const leaves = plan.map((p) => {
      if ("value" in p) return p.value;
      const raw = bytes.subarray(dataStart + p.offsets[0], dataStart + p.offsets[1]);
      // Uploading zero bytes crashes Deno's WebGPU (queue.writeBuffer panics), so empty
      // tensors are created without an upload.
      const t = raw.length === 0
        ? zeros(p.shape, { dtype: p.dtype!, device: options.device })
        : fromTypedArray(fromLittleEndian(raw, p.dtype!), p.shape, p.dtype!, options.device);
      created.push(t);
      return t;
    });
    return { tree: unflattenTree<T>(def, leaves), metadata };
  } catch (e) {
    created.forEach((t) => t.dispose());
    throw e;
  }
}

function planFromTemplate(
  like: unknown,
  byName: Map<string, HeaderEntry>,
  saved: { def: TreeDef; leaves: StoredLeaf[] } | null,
  bad: (msgs: string[]) => never,
): [TreeDef, (HeaderEntry | { value: unknown })[]] {
  const [leaves, def] = flattenTree(like);
  const names = leafNames(def);
  const savedValues = new Map<string, StoredLeaf>();
  if (saved) leafNames(saved.def).forEach((n, i) => savedValues.set(n, saved.leaves[i]));
  const problems: string[] = [];
  const used = new Set<string>();
  const plan = leaves.map((leaf, i) => {
    const name = names[i];
    const entry = byName.get(name);
    if (!(leaf instanceof Tensor)) {
      const s = savedValues.get(name);
      return { value: s && !("tensor" in s) ? restoreLeaf(s) : leaf };
    }
    const want = `${leaf.dtype}${fmt(leaf.shape)}`;
    if (!entry) {
      problems.push(`tensor ${JSON.stringify(name)} is missing (expected ${want})`);
      return { value: null };
    }
    used.add(name);
    if (entry.dtype !== leaf.dtype || fmt(entry.shape) !== fmt(leaf.shape)) {
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

/** Nested objects from dotted names, for files without the tree entry. */
function planFromNames(
  entries: HeaderEntry[],
  bad: (msgs: string[]) => never,
): [TreeDef, HeaderEntry[]] {
  type Dir = Map<string, Dir | HeaderEntry>;
  const root: Dir = new Map();
  for (const e of entries) {
    const parts = e.name.split(".");
    let dir = root;
    for (const p of parts.slice(0, -1)) {
      const next = dir.get(p) ?? new Map();
      if (!(next instanceof Map)) {
        bad([`tensor ${JSON.stringify(e.name)} clashes with ${JSON.stringify(next.name)}`]);
      }
      dir.set(p, next);
      dir = next as Dir;
    }
    const last = parts.at(-1)!;
    if (dir.has(last)) bad([`tensor ${JSON.stringify(e.name)} clashes with another tensor's name`]);
    dir.set(last, e);
  }
  const order: HeaderEntry[] = [];
  const walk = (x: Dir | HeaderEntry): TreeDef => {
    if (!(x instanceof Map)) {
      order.push(x);
      return { kind: "leaf" };
    }
    return { kind: "object", keys: [...x.keys()], children: [...x.values()].map(walk) };
  };
  return [walk(root), order];
}
