/**
 * Rearranging elements: `tile`, `repeat`, `flip`, `roll`, `moveaxis` and `flatten`, all
 * compositions of reshape, transpose, broadcast, slice, concat and take, so their gradients
 * come from those ops.
 * @module
 */
import { checkTensor, normAxes, normAxis } from "./validate.ts";
import { fmt, type Tensor } from "./tensor.ts";

import { broadcastTo, reshape, transpose } from "./shape.ts";
import { concat, slice } from "./slicing.ts";
import { take } from "./indexing.ts";
import { tensor } from "./creation.ts";

import { scope } from "./scope.ts";

function checkCounts(op: string, name: string, v: readonly number[]) {
  if (!Array.isArray(v) || v.some((r) => !Number.isInteger(r) || r < 0)) {
    throw new RangeError(`${op}: ${name} must be non-negative integers, got ${JSON.stringify(v)}`);
  }
}

/**
 * Repeats the whole of `x` `reps[d]` times along each axis (NumPy `tile`). A shorter `reps` is
 * padded with leading 1s; a shorter `x` gets leading size-1 axes.
 *
 * Shapes: `x [d0, .., dk]`, `reps [r0, .., rk]` (after padding) to `[r0 d0, .., rk dk]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensor, tile } from "@longseq/tensor";
 * assert.deepEqual(await tile(tensor([1, 2]), 2).array(), [1, 2, 1, 2]);
 * assert.deepEqual(await tile(tensor([[1, 2]]), [2, 1]).array(), [[1, 2], [1, 2]]);
 * ```
 */
export function tile(x: Tensor, reps: number | readonly number[]): Tensor {
  checkTensor("tile", "x", x);
  const r = typeof reps === "number" ? [reps] : [...reps];
  checkCounts("tile", "reps", r);
  const rank = Math.max(r.length, x.rank);
  const rs = [...new Array(rank - r.length).fill(1), ...r];
  const xs = [...new Array(rank - x.rank).fill(1), ...x.shape];
  return scope(() => {
    const spread = reshape(x, xs.flatMap((d) => [1, d]));
    const big = broadcastTo(spread, xs.flatMap((d, i) => [rs[i], d]));
    return reshape(big, xs.map((d, i) => d * rs[i]));
  });
}

/**
 * Repeats each element `repeats` times along `axis` (NumPy `repeat`); without `axis`, `x` is
 * flattened first. `repeats` is one count for every element, or one count per element of the
 * axis (then the result is a `take` with the index list built on the host).
 *
 * Shapes: `x [.., n, ..]` to `[.., n * repeats, ..]` (or `sum(repeats)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { repeat, tensor } from "@longseq/tensor";
 * assert.deepEqual(await repeat(tensor([[1, 2], [3, 4]]), 2, 1).array(), [
 *   [1, 1, 2, 2],
 *   [3, 3, 4, 4],
 * ]);
 * assert.deepEqual(await repeat(tensor([5, 6, 7]), [0, 1, 2]).array(), [6, 7, 7]);
 * ```
 */
export function repeat(x: Tensor, repeats: number | readonly number[], axis?: number): Tensor {
  checkTensor("repeat", "x", x);
  const counts = typeof repeats === "number" ? [repeats] : [...repeats];
  checkCounts("repeat", "repeats", counts);
  return scope(() => {
    const src = axis === undefined ? reshape(x, [x.size]) : x;
    const a = normAxis("repeat", axis ?? 0, src.rank);
    const n = src.shape[a];
    if (typeof repeats === "number") {
      const shape = [...src.shape];
      const spread = reshape(src, [...shape.slice(0, a + 1), 1, ...shape.slice(a + 1)]);
      const big = broadcastTo(spread, [
        ...shape.slice(0, a + 1),
        repeats,
        ...shape.slice(a + 1),
      ]);
      shape[a] = n * repeats;
      return reshape(big, shape);
    }
    if (counts.length !== n) {
      throw new RangeError(
        `repeat: ${counts.length} repeat counts for axis ${a} of ${fmt(src.shape)} (size ${n}); ` +
          "give one count, or one per element",
      );
    }
    const idx = counts.flatMap((c, i) => new Array<number>(c).fill(i));
    return take(src, tensor(Int32Array.from(idx), { device: x.device }), a);
  });
}

/**
 * Reverses the order of elements along `axes` (default: all), as `jnp.flip`.
 *
 * Shapes: `x [...]` to `[...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flip, tensor } from "@longseq/tensor";
 * const x = tensor([[1, 2], [3, 4]]);
 * assert.deepEqual(await flip(x, 1).array(), [[2, 1], [4, 3]]);
 * assert.deepEqual(await flip(x).array(), [[4, 3], [2, 1]]);
 * ```
 */
export function flip(x: Tensor, axes?: number | readonly number[]): Tensor {
  checkTensor("flip", "x", x);
  const ax = normAxes("flip", axes, x.rank);
  const steps = x.shape.map((_, d) => (ax.includes(d) ? -1 : 1));
  const none = x.shape.map(() => undefined);
  return slice(x, none, none, steps);
}

/**
 * Rolls elements along `axis` by `shift` places (as `jnp.roll`): elements pushed past the end
 * come back at the start. `shift` and `axis` may be lists of equal length (one shift given
 * with several axes applies to each); without `axis`, `x` is rolled as if flattened.
 *
 * Shapes: `x [...]` to `[...]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roll, tensor } from "@longseq/tensor";
 * assert.deepEqual(await roll(tensor([1, 2, 3, 4]), 1).array(), [4, 1, 2, 3]);
 * assert.deepEqual(await roll(tensor([[1, 2], [3, 4]]), [1, -1], [0, 1]).array(), [
 *   [4, 3],
 *   [2, 1],
 * ]);
 * ```
 */
export function roll(
  x: Tensor,
  shift: number | readonly number[],
  axis?: number | readonly number[],
): Tensor {
  checkTensor("roll", "x", x);
  const shifts = typeof shift === "number" ? [shift] : [...shift];
  if (shifts.some((s) => !Number.isInteger(s))) {
    throw new TypeError(`roll: shifts must be integers, got ${JSON.stringify(shift)}`);
  }
  if (axis === undefined) {
    if (shifts.length !== 1) {
      throw new RangeError(`roll: without axis, shift must be one number, got ${shifts}`);
    }
    return scope(() => reshape(roll(reshape(x, [x.size]), shifts[0], 0), x.shape));
  }
  const axes = (typeof axis === "number" ? [axis] : [...axis]).map((a) =>
    normAxis("roll", a, x.rank)
  );
  if (shifts.length === 1 && axes.length > 1) {
    const one = shifts[0];
    shifts.splice(0, 1, ...axes.map(() => one));
  }
  if (axes.length !== shifts.length) {
    throw new RangeError(
      `roll: ${shifts.length} shifts for ${axes.length} axes; give one shift per axis (or one ` +
        "for all)",
    );
  }
  return scope(() => {
    let y = x;
    axes.forEach((a, i) => {
      const n = x.shape[a];
      const s = n === 0 ? 0 : ((shifts[i] % n) + n) % n;
      if (s === 0) return;
      const at = (v: number) => x.shape.map((_, d) => (d === a ? v : undefined));
      y = concat([slice(y, at(n - s)), slice(y, at(0), at(n - s))], a);
    });
    return y === x ? reshape(x, x.shape) : y;
  });
}

/**
 * Moves axes to new positions, the others keeping their order (`jnp.moveaxis`).
 *
 * Shapes: `moveaxis(x [a, b, c], 0, -1)` is `[b, c, a]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { moveaxis, zeros } from "@longseq/tensor";
 * assert.deepEqual(moveaxis(zeros([2, 3, 4]), 0, -1).shape, [3, 4, 2]);
 * assert.deepEqual(moveaxis(zeros([2, 3, 4]), [0, 1], [2, 0]).shape, [3, 4, 2]);
 * ```
 */
export function moveaxis(
  x: Tensor,
  source: number | readonly number[],
  destination: number | readonly number[],
): Tensor {
  checkTensor("moveaxis", "x", x);
  const src = (typeof source === "number" ? [source] : [...source]).map((a) =>
    normAxis("moveaxis", a, x.rank)
  );
  const dst = (typeof destination === "number" ? [destination] : [...destination]).map((a) =>
    normAxis("moveaxis", a, x.rank)
  );
  if (
    src.length !== dst.length || new Set(src).size !== src.length ||
    new Set(dst).size !== dst.length
  ) {
    throw new RangeError(
      `moveaxis: source ${JSON.stringify(source)} and destination ${
        JSON.stringify(destination)
      } must be lists of distinct axes of equal length`,
    );
  }
  const order = x.shape.map((_, i) => i).filter((i) => !src.includes(i));
  dst.map((d, i) => [d, src[i]]).sort((p, q) => p[0] - q[0]).forEach(([d, s]) =>
    order.splice(d, 0, s)
  );
  return transpose(x, order);
}

/**
 * Merges the axes `startAxis..endAxis` (inclusive; default all) into one, without copying
 * (PyTorch `flatten`). A scalar becomes `[1]`.
 *
 * Shapes: `flatten(x [a, b, c, d], 1, 2)` is `[a, b c, d]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flatten, zeros } from "@longseq/tensor";
 * assert.deepEqual(flatten(zeros([2, 3, 4])).shape, [24]);
 * assert.deepEqual(flatten(zeros([2, 3, 4]), 1).shape, [2, 12]);
 * ```
 */
export function flatten(x: Tensor, startAxis: number = 0, endAxis: number = -1): Tensor {
  checkTensor("flatten", "x", x);
  if (x.rank === 0) return reshape(x, [1]);
  const s = normAxis("flatten", startAxis, x.rank), e = normAxis("flatten", endAxis, x.rank);
  if (s > e) {
    throw new RangeError(
      `flatten: startAxis ${startAxis} comes after endAxis ${endAxis} for ${fmt(x.shape)}`,
    );
  }
  const merged = x.shape.slice(s, e + 1).reduce((p, d) => p * d, 1);
  return reshape(x, [...x.shape.slice(0, s), merged, ...x.shape.slice(e + 1)]);
}
