/**
 * Angular LSH for the Reformer (Andoni et al. 2015;
 * docs/algorithms.md#hashing-by-random-rotations): random rotations, bucket counts (the default
 * from the length, factorised when large) and the bucket assignment
 * `argmax([xR ; -xR])`, with an extra bucket for padding.
 * @module
 */
import { fmt, Tensor } from "../../ops/tensor.ts";
import { add, mul } from "../../ops/binary.ts";
import { greaterEqual, where } from "../../ops/compare.ts";
import { matmul } from "../../ops/matmul.ts";
import { max, min } from "../../ops/reduce.ts";
import { argmax, argmin } from "../../ops/arg_reduce.ts";
import { reshape, transpose } from "../../ops/shape.ts";
import { slice } from "../../ops/slicing.ts";
import { neg } from "../../ops/unary.ts";
import * as random from "../../ops/random.ts";

/** A bucket count, or its factors (`[f1, f2]` hashes into `f1 * f2` buckets). */
export type BucketSpec = number | readonly number[];

/** Throws unless `spec` is an even count or a list of even factors. */
export function checkBuckets(op: string, spec: unknown): readonly number[] {
  const list = typeof spec === "number" ? [spec] : spec;
  if (
    !Array.isArray(list) || list.length === 0 ||
    !list.every((f) => Number.isInteger(f) && f >= 2 && f % 2 === 0)
  ) {
    throw new RangeError(
      `${op}: nBuckets must be an even integer >= 2 or a list of such factors, got ${
        JSON.stringify(spec)
      }`,
    );
  }
  return list;
}

/**
 * The default bucket count for a (padded) length: `2 * max(1, len / chunkLen)` rounded down
 * to a power of two, factorised into two powers of two when it exceeds `2 * chunkLen` (so the
 * rotation stays small next to the attention itself). Computed per call from the actual
 * length, never fixed at init.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn } from "@longseq/tensor";
 * assert.equal(nn.defaultBuckets(1024, 64), 32);
 * assert.deepEqual(nn.defaultBuckets(65536, 64), [32, 64]);
 * ```
 */
export function defaultBuckets(len: number, chunkLen: number): number | [number, number] {
  const target = 2 * Math.max(1, Math.floor(len / chunkLen));
  const pow = Math.floor(Math.log2(target));
  const n = 2 ** pow;
  if (n <= 2 * chunkLen || pow < 2) return n;
  const lo = Math.floor(pow / 2);
  return [2 ** lo, 2 ** (pow - lo)];
}

/** The number of buckets a spec hashes into (the product of its factors). */
export function bucketCount(spec: BucketSpec): number {
  return typeof spec === "number" ? spec : spec.reduce((a, b) => a * b, 1);
}

/** Half the rotation width of a spec: the last axis of the rotations, `sum(factors) / 2`. */
export function rotationHalf(spec: BucketSpec): number {
  return (typeof spec === "number" ? spec : spec.reduce((a, b) => a + b, 0)) / 2;
}

/**
 * Draws random rotations `N(0, 1)` in HF's layout `[heads, dHead, nHashes, rotationHalf]`: one
 * set per head and hash round, shared across the batch, on the key's device.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random } from "@longseq/tensor";
 * const r = nn.randomRotations(random.key(0), 2, 16, 4, 8);
 * assert.deepEqual(r.shape, [2, 16, 4, 4]);
 * ```
 */
export function randomRotations(
  key: Tensor,
  heads: number,
  dHead: number,
  nHashes: number,
  spec: BucketSpec,
): Tensor {
  return random.normal(key, [heads, dHead, nHashes, rotationHalf(spec)]);
}

/** Throws unless `r` is `[heads, dHead, nHashes, rotationHalf]` f32. */
export function checkRotations(
  op: string,
  r: unknown,
  heads: number,
  dHead: number,
  nHashes: number,
  spec: BucketSpec,
): void {
  const want = [heads, dHead, nHashes, rotationHalf(spec)];
  if (!(r instanceof Tensor) || fmt(r.shape) !== fmt(want) || r.dtype !== "f32") {
    throw new RangeError(
      `${op}: opts.rotations must be f32 ${fmt(want)} ([heads, dHead, nHashes, rotSize/2]), got ${
        r instanceof Tensor ? `${r.dtype}${fmt(r.shape)}` : typeof r
      }`,
    );
  }
}

/** `argmax([x ; -x])` over the last axis, without building the concatenation. */
function signedArgmax(x: Tensor): Tensor {
  const half = x.shape[x.rank - 1];
  using hi = max(x, -1);
  using lo = min(x, -1);
  using nlo = neg(lo);
  // Ties go to the first half, as argmax of the concatenation picks the first maximum.
  using firstHalf = greaterEqual(hi, nlo);
  using am = argmax(x, -1);
  using an = argmin(x, -1);
  using second = add(an, half);
  return where(firstHalf, am, second);
}

/**
 * Bucket ids of `qk` for every hash round: `bucket = argmax([xR ; -xR])`, or for factors
 * `[f1, f2, ...]` the mixed-radix `b1 + f1 * b2 + ...` of one such argmax per factor, each over
 * its own slice of the rotation. Positions where `valid` is false get the padding bucket
 * `bucketCount(spec)`.
 *
 * @param qk `[b, heads, len, dHead]` (not differentiated).
 * @param rotations `[heads, dHead, nHashes, rotationHalf(spec)]`.
 * @param valid optional bool `[b, len]`.
 * @returns i32 `[b, heads, nHashes, len]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nn, random } from "@longseq/tensor";
 * const qk = random.normal(random.key(0), [1, 2, 5, 4]); // [b, heads, len, dHead]
 * const rot = nn.randomRotations(random.key(1), 2, 4, 3, [2, 4]); // [2, 4, 3, 3]
 * const ids = nn.hashBuckets(qk, rot, [2, 4], null);
 * assert.deepEqual(ids.shape, [1, 2, 3, 5]);
 * assert.ok(Array.from(await ids.data()).every((b) => b >= 0 && b < 8));
 * ```
 */
export function hashBuckets(
  qk: Tensor,
  rotations: Tensor,
  spec: BucketSpec,
  valid: Tensor | null,
): Tensor {
  const [b, h, n] = qk.shape;
  const [, dk, nh, rh] = rotations.shape;
  const factors = typeof spec === "number" ? [spec] : spec;
  using r2 = reshape(rotations, [h, dk, nh * rh]);
  using rot = matmul(qk, r2);
  using r5 = reshape(rot, [b, h, n, nh, rh]);
  using rotated = transpose(r5, [0, 1, 3, 2, 4]);
  let buckets: Tensor | null = null;
  let at = 0, radix = 1;
  for (const f of factors) {
    const starts = [0, 0, 0, 0, at];
    const ends = [b, h, nh, n, at + f / 2];
    using part = factors.length === 1 ? rotated.view(rotated.shape) : slice(rotated, starts, ends);
    using id = signedArgmax(part);
    if (buckets === null) buckets = id.view(id.shape);
    else {
      using scaled = mul(id, radix);
      const next = add(buckets, scaled);
      buckets.dispose();
      buckets = next;
    }
    at += f / 2;
    radix *= f;
  }
  if (!valid) return buckets!;
  using vm = reshape(valid, [b, 1, 1, n]);
  const out = where(vm, buckets!, bucketCount(spec));
  buckets!.dispose();
  return out;
}
