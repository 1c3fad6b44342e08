/**
 * Batches for language-model training from host data: random windows over a byte string,
 * consecutive windows for evaluation, and the duplication task (Reformer §5;
 * docs/algorithms.md#duplication-task). Batch `step` depends only on the seed and `step`, so a
 * resumed run sees the same batches as an uninterrupted one. Re-exported by `data.ts`.
 * @module
 */
import { mulberry32 } from "../../mod.ts";

/** One batch for a language model: predict `targets[b, t]` having seen `inputs[b, 0..t]`. */
export interface LmBatch {
  /** `[batch, len]` token ids fed to the model. */
  inputs: Int32Array;
  /** `[batch, len]` token ids to predict. */
  targets: Int32Array;
  /** `[batch, len]` loss weights (1 where the target counts), or undefined for all ones. */
  mask?: Float32Array;
  /** `[batch, len]`. */
  shape: [number, number];
}

/** Options of {@linkcode lmBatch} and {@linkcode batches}. */
export interface WindowOptions {
  /** Sequences per batch. */
  batch: number;
  /** Tokens per sequence. */
  len: number;
  /** Seed; batch `step` depends only on `(seed, step)`. */
  seed: number;
}

/** mulberry32 (from the library's testing helpers): the PRNG of data sampling. */
export { mulberry32 };

/** Hashes a seed and a counter into one 32-bit seed (so nearby steps get unrelated streams). */
export function mixSeed(seed: number, step: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(step >>> 0, 0xc2b2ae35);
  h ^= (step / 4294967296) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

function checkSizes(op: string, sizes: Record<string, number>): void {
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new RangeError(`${op}: ${k} must be a positive integer, got ${v}`);
    }
  }
}

/**
 * Batch number `step` of random windows of `len + 1` bytes: inputs are the first `len`,
 * targets the last `len`. Depends only on `(bytes, batch, len, seed, step)`.
 *
 * @example
 * ```ts
 * const b = lmBatch(new TextEncoder().encode("hello world"), { batch: 2, len: 4, seed: 1 }, 0);
 * console.log(b.shape, b.inputs[1] === b.targets[0]); // [2, 4] true
 * ```
 */
export function lmBatch(bytes: Uint8Array, options: WindowOptions, step: number): LmBatch {
  const { batch, len, seed } = options;
  checkSizes("lmBatch", { batch, len });
  if (bytes.length < len + 1) {
    throw new RangeError(
      `lmBatch: windows of len + 1 = ${len + 1} bytes need more than the ${bytes.length} given`,
    );
  }
  const rand = mulberry32(mixSeed(seed, step));
  const inputs = new Int32Array(batch * len);
  const targets = new Int32Array(batch * len);
  for (let b = 0; b < batch; b++) {
    const start = Math.floor(rand() * (bytes.length - len));
    for (let t = 0; t < len; t++) {
      inputs[b * len + t] = bytes[start + t];
      targets[b * len + t] = bytes[start + t + 1];
    }
  }
  return { inputs, targets, shape: [batch, len] };
}

/**
 * An endless stream of {@linkcode lmBatch} batches from step `start` (default 0); resuming at
 * step `s` yields exactly what an uninterrupted stream yields from its `s`-th batch on.
 *
 * @example
 * ```ts
 * const it = batches(new Uint8Array(100), { batch: 2, len: 8, seed: 0 });
 * console.log(it.next().value!.shape); // [2, 8]
 * ```
 */
export function* batches(
  bytes: Uint8Array,
  options: WindowOptions & { start?: number },
): Generator<LmBatch, never> {
  for (let step = options.start ?? 0;; step++) yield lmBatch(bytes, options, step);
}

/**
 * Consecutive non-overlapping windows covering `bytes` (the tail that does not fill a window is
 * dropped), `batch` per yield (the last batch may be smaller), for evaluating bits per byte.
 *
 * @example
 * ```ts
 * const all = [...evalBatches(new Uint8Array(21), { batch: 2, len: 4 })];
 * console.log(all.map((b) => b.shape)); // [[2, 4], [2, 4], [1, 4]]
 * ```
 */
export function* evalBatches(
  bytes: Uint8Array,
  options: { batch: number; len: number; maxBatches?: number },
): Generator<LmBatch> {
  const { batch, len, maxBatches = Infinity } = options;
  checkSizes("evalBatches", { batch, len });
  const windows = Math.floor((bytes.length - 1) / len);
  for (let w = 0, k = 0; w < windows && k < maxBatches; w += batch, k++) {
    const rows = Math.min(batch, windows - w);
    const inputs = new Int32Array(rows * len);
    const targets = new Int32Array(rows * len);
    for (let i = 0; i < rows * len; i++) {
      inputs[i] = bytes[w * len + i];
      targets[i] = bytes[w * len + i + 1];
    }
    yield { inputs, targets, shape: [rows, len] };
  }
}

/** A batch of the duplication task; `tokens` are the raw `0 w 0 w` sequences. */
export interface CopyBatch extends LmBatch {
  /** `[batch, len]` the sequences `0 w 0 w`. */
  tokens: Int32Array;
  /** `[batch, len]` 1 on the second copy of `w`, 0 elsewhere. */
  mask: Float32Array;
}

/**
 * The duplication task (Reformer §5; docs/algorithms.md#duplication-task): sequences `0 w 0 w` of
 * length `len` (even, at least 4) with `w` of `len / 2 - 1` symbols drawn uniformly from
 * `1 .. vocab-1`. `targets` are the sequences, `inputs` the sequences shifted right by one (a leading 0), and
 * `mask` is 1 exactly on the second copy of `w`, where loss and accuracy are measured. Batch
 * `step` depends only on `(batch, len, vocab, seed, step)`.
 *
 * @example
 * ```ts
 * const b = copyTaskBatch({ batch: 1, len: 8, vocab: 5, seed: 0 });
 * console.log(Array.from(b.tokens), Array.from(b.mask)); // e.g. [0,3,1,4,0,3,1,4] [0,0,0,0,0,1,1,1]
 * ```
 */
export function copyTaskBatch(
  options: { batch: number; len: number; vocab: number; seed: number; step?: number },
): CopyBatch {
  const { batch, len, vocab, seed, step = 0 } = options;
  checkSizes("copyTaskBatch", { batch, len, vocab });
  if (len < 4 || len % 2 !== 0) {
    throw new RangeError(`copyTaskBatch: len must be even and >= 4, got ${len}`);
  }
  if (vocab < 2) {
    throw new RangeError(`copyTaskBatch: vocab must be >= 2 (0 is the separator), got ${vocab}`);
  }
  const half = len / 2;
  const rand = mulberry32(mixSeed(seed ^ 0x5bd1e995, step));
  const tokens = new Int32Array(batch * len);
  const inputs = new Int32Array(batch * len);
  const mask = new Float32Array(batch * len);
  for (let b = 0; b < batch; b++) {
    const row = b * len;
    for (let i = 1; i < half; i++) {
      const s = 1 + Math.floor(rand() * (vocab - 1));
      tokens[row + i] = s;
      tokens[row + half + i] = s;
      mask[row + half + i] = 1;
    }
    inputs.set(tokens.subarray(row, row + len - 1), row + 1);
  }
  return { tokens, inputs, targets: tokens.slice(), mask, shape: [batch, len] };
}
