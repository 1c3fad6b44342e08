import assert from "node:assert/strict";
import * as T from "../../../mod.ts";
import { attention } from "../../../nn/attention/full.ts";
import { lshAttention, type LshAttentionConfig } from "../../../nn/attention/lsh.ts";
import { defaultBuckets, hashBuckets } from "../../../nn/attention/lsh_hash.ts";
import * as random from "../../../ops/random.ts";
import { noLeaks, randomArray, rng, testDevices } from "../../util.ts";
import { type RefConfig, refHash, refLsh } from "./attention_ref.ts";
import { assertFinite, disposeParams, makeParams } from "./attention_util.ts";

const dModel = 8, heads = 2, dHead = 4;

function randomMask(rand: () => number, b: number, n: number, fullyPadded = false): boolean[][] {
  return Array.from(
    { length: b },
    (_, bi) =>
      Array.from(
        { length: n },
        (_, j) => fullyPadded && bi === b - 1 ? false : j === 0 || rand() < 0.7,
      ),
  );
}

/** Reads i32 buckets `[b, h, r, lp]` as nested arrays. */
async function bucketsOf(t: T.Tensor): Promise<number[][][][]> {
  return (await t.array()) as number[][][][];
}

Deno.test("lshAttention equals full shared-QK attention when one chunk holds the sequence", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(21);
        const cases = [
          { n: 7, chunkLen: 8, nHashes: 1, causal: false, masked: false, dedup: false },
          { n: 8, chunkLen: 8, nHashes: 3, causal: true, masked: false, dedup: false },
          { n: 5, chunkLen: 8, nHashes: 2, causal: false, masked: true, dedup: false },
          { n: 6, chunkLen: 6, nHashes: 4, causal: true, masked: true, dedup: true },
          { n: 1, chunkLen: 4, nHashes: 2, causal: true, masked: false, dedup: false },
        ];
        for (const cs of cases) {
          const b = 2;
          const { params } = makeParams(rand, dModel, heads, dHead, true, device);
          const xData = randomArray(rand, b * cs.n * dModel, -2, 2);
          const mask = cs.masked ? randomMask(rand, b, cs.n) : undefined;
          const lsh = lshAttention({ dModel, heads, ...cs });
          const full = attention({ dModel, heads, sharedQK: true, causal: cs.causal });
          const [y, want] = T.scope(() => {
            const x = T.tensor(xData, { shape: [b, cs.n, dModel], device });
            const m = mask ? T.tensor(mask, { device }) : undefined;
            const key = random.key(5, { device });
            return [lsh.apply(params, x, { key, mask: m }), full.apply(params, x, { mask: m })];
          });
          await T.assertAllClose(y, want, { rtol: 2e-5, atol: 2e-6 });
          y.dispose();
          want.dispose();
          disposeParams(params);
        }
      }));
  }
});

Deno.test("lshAttention matches the float64 LSH reference on many chunks", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(22);
        const cases: (Partial<LshAttentionConfig> & { n: number; masked: boolean })[] = [
          { n: 13, chunkLen: 4, nHashes: 2, causal: true, masked: true },
          { n: 16, chunkLen: 4, nHashes: 3, causal: false, masked: false, dedup: true },
          { n: 9, chunkLen: 2, nHashes: 1, causal: false, masked: true, chunksAfter: 1 },
          { n: 11, chunkLen: 2, nHashes: 2, causal: true, masked: false, nBuckets: [2, 4] },
          { n: 12, chunkLen: 3, nHashes: 2, causal: true, masked: true, dedup: true },
        ];
        for (const { n, masked, ...cs } of cases) {
          const b = 2;
          const { ref, params } = makeParams(rand, dModel, heads, dHead, true, device);
          const xData = randomArray(rand, b * n * dModel, -2, 2);
          const mask = masked ? randomMask(rand, b, n) : undefined;
          const lsh = lshAttention({ dModel, heads, ...cs });
          const { out, saved } = T.scope(() => {
            const x = T.tensor(xData, { shape: [b, n, dModel], device });
            const m = mask ? T.tensor(mask, { device }) : undefined;
            return lsh.applyWithState(params, x, { key: random.key(7, { device }), mask: m });
          });
          const c: RefConfig = {
            b,
            n,
            dModel,
            heads,
            dHead,
            sharedQK: true,
            causal: !!cs.causal,
            mask,
          };
          const offsets = Array.from(
            { length: (cs.chunksBefore ?? 1) + (cs.chunksAfter ?? 0) + 1 },
            (_, i) => i - (cs.chunksBefore ?? 1),
          );
          const want = refLsh(xData, ref, c, await bucketsOf(saved.buckets), {
            chunkLen: cs.chunkLen!,
            offsets,
            dedup: cs.dedup,
          });
          await T.assertAllClose(out, want, { rtol: 1e-4, atol: 1e-5 });
          out.dispose();
          saved.buckets.dispose();
          disposeParams(params);
        }
      }));
  }
});

Deno.test("lsh hashing is argmax([xR; -xR]) in HF's rotation layout", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(23);
        for (const spec of [8, [4, 2], [2, 2, 4]] as const) {
          const b = 2, h = 2, n = 9, dk = 4, nh = 3;
          const factors = typeof spec === "number" ? [spec] : [...spec];
          const half = factors.reduce((a, c) => a + c, 0) / 2;
          const qk = randomArray(rand, b * h * n * dk);
          const rot = randomArray(rand, h * dk * nh * half, -2, 2);
          const valid = randomMask(rand, b, n);
          const got = T.scope(() => {
            const q = T.tensor(qk, { shape: [b, h, n, dk], device });
            const r = T.tensor(rot, { shape: [h, dk, nh, half], device });
            return hashBuckets(q, r, spec, T.tensor(valid, { device }));
          });
          assert.deepEqual(got.shape, [b, h, nh, n]);
          const g = await got.data();
          got.dispose();
          const nb = factors.reduce((a, c) => a * c, 1);
          for (let bi = 0; bi < b; bi++) {
            for (let hi = 0; hi < h; hi++) {
              for (let r = 0; r < nh; r++) {
                for (let i = 0; i < n; i++) {
                  const at = ((bi * h + hi) * nh + r) * n + i;
                  if (!valid[bi][i]) {
                    assert.equal(g[at], nb);
                    continue;
                  }
                  const vec = Array.from(
                    qk.subarray(((bi * h + hi) * n + i) * dk, ((bi * h + hi) * n + i + 1) * dk),
                  );
                  const rf = (d: number, rr: number, k: number) =>
                    rot[((hi * dk + d) * nh + rr) * half + k];
                  const want = refHash(vec, rf, r, factors);
                  if (want.margin > 1e-4) assert.equal(g[at], want.bucket, `spec ${spec} at ${at}`);
                }
              }
            }
          }
        }
      }));
  }
});

Deno.test("lshAttention: the error against full attention falls as nHashes grows", async () => {
  await noLeaks(async () => {
    const rand = rng(24);
    const b = 1, n = 64, d = 16, h = 2;
    const { params } = makeParams(rand, d, h, 8, true, "cpu-reference");
    const x = T.tensor(randomArray(rand, b * n * d, -2, 2), {
      shape: [b, n, d],
      device: "cpu-reference",
    });
    const full = attention({ dModel: d, heads: h, sharedQK: true });
    const wantT = full.apply(params, x);
    const want = await wantT.data();
    wantT.dispose();
    const errs: number[] = [];
    for (const nHashes of [1, 2, 4, 8]) {
      const lsh = lshAttention({ dModel: d, heads: h, nHashes, chunkLen: 8, nBuckets: 8 });
      let err = 0;
      for (let seed = 0; seed < 3; seed++) {
        const y = T.scope(() =>
          lsh.apply(params, x, { key: random.key(100 + seed, { device: "cpu-reference" }) })
        );
        const got = await y.data();
        y.dispose();
        let num = 0, den = 0;
        got.forEach((v, i) => (num += Math.abs(v - want[i]), den += Math.abs(want[i])));
        err += num / den / 3;
      }
      errs.push(err);
    }
    console.log(
      `relative error vs full attention for nHashes 1, 2, 4, 8: ${errs.map((e) => e.toFixed(4))}`,
    );
    for (let i = 1; i < errs.length; i++) assert.ok(errs[i] < errs[i - 1], `errors ${errs}`);
    assert.ok(errs[3] < errs[0] / 2, `errors ${errs}`);
    x.dispose();
    disposeParams(params);
  });
});

Deno.test("lshAttention: odd lengths, length 1 and fully padded rows give no NaN", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const rand = rng(27);
        const { params } = makeParams(rand, dModel, heads, dHead, true, device);
        for (const n of [1, 3, 7, 10]) {
          for (const causal of [false, true]) {
            const lsh = lshAttention({
              dModel,
              heads,
              chunkLen: 4,
              nHashes: 2,
              causal,
              dedup: n > 5,
            });
            const y = T.scope(() => {
              const x = T.tensor(randomArray(rand, 2 * n * dModel), {
                shape: [2, n, dModel],
                device,
              });
              const mask = T.tensor(randomMask(rand, 2, n, true), { device });
              return lsh.apply(params, x, { mask, key: random.key(n, { device }) });
            });
            assert.deepEqual(y.shape, [2, n, dModel]);
            await assertFinite(y, `n=${n} causal=${causal}`);
            y.dispose();
          }
        }
        disposeParams(params);
      }));
  }
});

Deno.test("lshAttention: buckets per call, init and validation", async (t) => {
  await t.step("default bucket counts", () => {
    assert.equal(defaultBuckets(8, 64), 2);
    assert.equal(defaultBuckets(1024, 64), 32);
    assert.equal(defaultBuckets(4096, 64), 128);
    assert.deepEqual(defaultBuckets(65536, 64), [32, 64]);
    assert.equal(defaultBuckets(24, 8), 4);
  });
  await t.step(
    "bucket count follows the length of each call",
    () =>
      noLeaks(() =>
        T.scope(async () => {
          const lsh = lshAttention({ dModel: 4, heads: 1, chunkLen: 4, hashSeed: 1 });
          const p = lsh.init(random.key(0));
          for (const [n, nb] of [[8, 4], [30, 16], [64, 32]]) {
            const x = T.tensor(randomArray(rng(n), n * 4, -3, 3), { shape: [1, n, 4] });
            const { saved } = lsh.applyWithState(p, x);
            const ids = Array.from(await saved.buckets.data());
            const lp = Math.ceil(n / 4) * 4;
            assert.deepEqual(saved.buckets.shape, [1, 1, 1, lp]);
            assert.ok(ids.slice(0, n).every((v) => v >= 0 && v < nb), `n=${n}: ${ids}`);
            assert.ok(ids.slice(n).every((v) => v === nb), `padding bucket for n=${n}`);
          }
        })
      ),
  );
  await t.step(
    "explicit rotations hash deterministically; saved buckets replay",
    () =>
      noLeaks(() =>
        T.scope(async () => {
          const lsh = lshAttention({ dModel: 4, heads: 2, chunkLen: 2, nHashes: 2, nBuckets: 4 });
          const p = lsh.init(random.key(0));
          const x = T.tensor(randomArray(rng(3), 40), { shape: [1, 10, 4] });
          const rotations = random.normal(random.key(9), [2, 2, 2, 2]);
          const a = lsh.applyWithState(p, x, { rotations });
          const b = lsh.applyWithState(p, x, { rotations });
          assert.deepEqual(await a.saved.buckets.data(), await b.saved.buckets.data());
          assert.deepEqual(await lsh.apply(p, x, { saved: a.saved }).data(), await a.out.data());
        })
      ),
  );
  await t.step("errors", () =>
    noLeaks(() =>
      T.scope(() => {
        assert.throws(() => lshAttention({ dModel: 4, heads: 2, nBuckets: 3 }), /even/);
        assert.throws(() => lshAttention({ dModel: 4, heads: 2, nHashes: 0 }), RangeError);
        assert.throws(() => lshAttention({ dModel: 4, heads: 2, chunkLen: 0 }), RangeError);
        const lsh = lshAttention({ dModel: 4, heads: 2, chunkLen: 2, nBuckets: 4 });
        const p = lsh.init(random.key(0));
        const x = T.zeros([1, 5, 4]);
        assert.throws(() => lsh.apply(p, x), /opts.key/);
        assert.throws(() => lsh.apply(p, x, { rotations: T.zeros([2, 2, 1, 3]) }), /rotations/);
        const bad = { buckets: T.zeros([1, 2, 1, 5], { dtype: "i32" }) };
        assert.throws(() => lsh.apply(p, x, { saved: bad }), /saved.buckets/);
        const { wqk: _, ...noQk } = p;
        assert.throws(() => lsh.apply({ ...noQk, wq: p.wqk }, x, { key: random.key(0) }), /wqk/);
      })
    ));
});
