import assert from "node:assert/strict";
import type * as T from "../../../mod.ts";
import {
  blockLayout,
  fixedPattern,
  layoutTiles,
  patternMask,
  type PatternSpec,
  stridedPattern,
} from "../../../nn/attention/sparse_patterns.ts";
import { patternAllows } from "../../../kernels/cpu/block_sparse.ts";
import { noLeaks, testDevices } from "../../util.ts";

/** Rows of a `[len, len]` bool mask as strings of `1` (attended) and `.`. */
async function rowsOf(m: T.Tensor): Promise<string[]> {
  const d = await m.data();
  const n = m.shape[0];
  return Array.from(
    { length: n },
    (_, i) => Array.from(d.subarray(i * n, (i + 1) * n), (x) => (x ? "1" : ".")).join(""),
  );
}

Deno.test("stridedPattern and fixedPattern match docs/algorithms.md on cases checked by hand", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        // strided, l = 3: A = the previous 3 positions; B = every 3rd position back.
        const [sa, sb] = stridedPattern(6, 3, { device });
        assert.deepEqual(await rowsOf(sa), [
          "1.....",
          "11....",
          "111...",
          ".111..",
          "..111.",
          "...111",
        ]);
        assert.deepEqual(await rowsOf(sb), [
          "1.....",
          ".1....",
          "..1...",
          "1..1..",
          ".1..1.",
          "..1..1",
        ]);
        // fixed, l = 3, c = 1: A = own block; B = position 2 mod 3 (summaries 2 and 5).
        const [fa, fb] = fixedPattern(6, 3, 1, { device });
        assert.deepEqual(await rowsOf(fa), [
          "1.....",
          "11....",
          "111...",
          "...1..",
          "...11.",
          "...111",
        ]);
        assert.deepEqual(await rowsOf(fb), [
          "......",
          "......",
          "..1...",
          "..1...",
          "..1...",
          "..1..1",
        ]);
        // fixed, l = 4, c = 2, a length that is not a multiple of l: summaries 2, 3 and 6.
        const [ga, gb] = fixedPattern(7, 4, 2, { device });
        assert.deepEqual(await rowsOf(gb), [
          ".......",
          ".......",
          "..1....",
          "..11...",
          "..11...",
          "..11...",
          "..11..1",
        ]);
        assert.deepEqual((await rowsOf(ga))[6], "....111");
        const u = patternMask({ kind: "strided", stride: 3, c: 0, part: "union" }, 6, { device });
        assert.deepEqual((await rowsOf(u))[5], "..1111");
        for (const m of [sa, sb, fa, fb, ga, gb, u]) {
          assert.equal(m.dtype, "bool");
          m.dispose();
        }
      }));
  }
});

/** Every pattern component for a few strides and summary sizes. */
function patterns(): PatternSpec[] {
  const out: PatternSpec[] = [];
  for (const part of ["a", "b", "union"] as const) {
    for (const stride of [1, 2, 3, 5, 8]) {
      out.push({ kind: "strided", stride, c: 0, part });
      for (const c of new Set([1, Math.ceil(stride / 2), stride])) {
        out.push({ kind: "fixed", stride, c, part });
      }
    }
  }
  return out;
}

Deno.test("the kernels' pattern predicate equals the mask formulas", async () => {
  await noLeaks(async () => {
    for (const p of patterns()) {
      const n = 19;
      using m = patternMask(p, n, { device: "cpu-reference" });
      const d = await m.data();
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          assert.equal(
            patternAllows(p, i, j),
            d[i * n + j] === 1,
            `${JSON.stringify(p)} ${i},${j}`,
          );
        }
      }
    }
  });
});

Deno.test("blockLayout lists exactly the tiles the boolean mask touches", async () => {
  await noLeaks(async () => {
    for (const p of patterns()) {
      for (const [len, bs] of [[16, 4], [19, 4], [23, 5], [7, 1], [5, 8], [40, 3], [1, 1]]) {
        using m = patternMask(p, len, { device: "cpu-reference" });
        const d = await m.data();
        // Independent count: scan the mask tile by tile.
        const nb = Math.ceil(len / bs);
        const want: [number, number][] = [];
        for (let qb = 0; qb < nb; qb++) {
          for (let kb = 0; kb < nb; kb++) {
            let any = false;
            for (let i = qb * bs; i < Math.min(len, qb * bs + bs) && !any; i++) {
              for (let j = kb * bs; j < Math.min(len, kb * bs + bs); j++) {
                any ||= d[i * len + j] === 1;
              }
            }
            if (any) want.push([qb, kb]);
          }
        }
        const l = blockLayout(p, len, bs);
        const what = `${JSON.stringify(p)} len ${len} block ${bs}`;
        assert.deepEqual(layoutTiles(l), want, what);
        assert.equal(l.tiles, want.length, what);
        assert.equal(l.nBlocks, nb);
        assert.ok(want.every(([qb, kb]) => kb <= qb), `${what}: a tile above the diagonal`);
        // The transposed lists hold the same tiles, grouped by key block.
        const byCol: [number, number][] = [];
        for (let kb = 0; kb < nb; kb++) {
          for (let t = l.colPtr[kb]; t < l.colPtr[kb + 1]; t++) byCol.push([l.rows[t], kb]);
        }
        const key = (x: [number, number]) => x[0] * nb + x[1];
        assert.deepEqual(byCol.map(key).sort((a, b) => a - b), want.map(key), what);
      }
    }
  });
});

Deno.test("blockLayout sizes: local parts stay O(len), the layout never exceeds the triangle", () => {
  const strided = (part: "a" | "b" | "union") =>
    ({ kind: "strided", stride: 16, c: 0, part }) as const;
  // Strided A with blockSize = stride: the diagonal tile and the one before it.
  assert.equal(blockLayout(strided("a"), 256, 16).tiles, 16 + 15);
  assert.deepEqual(layoutTiles(blockLayout({ ...strided("a"), stride: 4 }, 16, 4)), [
    [0, 0],
    [1, 0],
    [1, 1],
    [2, 1],
    [2, 2],
    [3, 2],
    [3, 3],
  ]);
  // Fixed A with blockSize = stride: diagonal tiles only.
  assert.equal(blockLayout({ kind: "fixed", stride: 16, c: 2, part: "a" }, 256, 16).tiles, 16);
  // Fixed B: every query block sees the summary column of every earlier key block.
  assert.equal(blockLayout({ kind: "fixed", stride: 16, c: 2, part: "b" }, 256, 16).tiles, 136);
  // Strided B with blocks of a quarter stride: only block offsets that are multiples of 4
  // hold a difference divisible by 16, so 544 of the 2080 lower tiles.
  assert.equal(blockLayout(strided("b"), 256, 4).tiles, 544);
});

Deno.test("pattern and layout errors", () => {
  const ok: PatternSpec = { kind: "fixed", stride: 4, c: 2, part: "a" };
  assert.throws(
    () => blockLayout({ ...ok, kind: "dense" as "fixed" }, 8, 2),
    /"strided" or "fixed"/,
  );
  assert.throws(() => blockLayout({ ...ok, stride: 0 }, 8, 2), /stride must be an integer >= 1/);
  assert.throws(() => blockLayout({ ...ok, c: 5 }, 8, 2), /c \(5\) must be at most the stride/);
  assert.throws(() => blockLayout({ ...ok, c: 0 }, 8, 2), /c must be an integer >= 1/);
  assert.throws(() => blockLayout({ ...ok, part: "x" as "a" }, 8, 2), /part must be/);
  assert.throws(() => blockLayout(ok, 0, 2), /len must be an integer >= 1/);
  assert.throws(() => blockLayout(ok, 8, 1.5), /blockSize must be an integer >= 1/);
  assert.throws(() => stridedPattern(4, -1), /stride must be/);
  assert.throws(() => fixedPattern(4, 2, 3), /c \(3\) must be at most/);
});
