import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { random } from "../../ops/random.ts";
import { noLeaks, testDevices } from "../util.ts";

const f32 = (t: T.Tensor) => t.data() as Promise<Float32Array>;
const i32 = (t: T.Tensor) => t.data() as Promise<Int32Array>;
function moments(x: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0, s2 = 0;
  for (let i = 0; i < x.length; i++) (s += x[i], s2 += x[i] * x[i]);
  const mean = s / x.length;
  return { mean, variance: s2 / x.length - mean * mean };
}

Deno.test("distributions: ranges and moments on 100k samples", async (t) => {
  const n = 100_000;
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const [k1, k2, k3, k4, k5, k6] = random.splitN(random.key(2024, { device }), 6);
          const u = await f32(random.uniform(k1, [n]));
          let m = moments(u);
          assert.ok(Math.abs(m.mean - 0.5) < 0.005 && Math.abs(m.variance - 1 / 12) < 0.0015);
          assert.ok(u.every((x) => x >= 0 && x < 1));
          const r = await f32(random.uniform(k1, [n], { minval: -2, maxval: 6 }));
          assert.ok(r.every((x) => x >= -2 && x < 6));
          m = moments(r);
          assert.ok(Math.abs(m.mean - 2) < 0.04 && Math.abs(m.variance - 64 / 12) < 0.1);
          // Just below the top of [1, 1 + 2^-23) the clamp keeps results below maxval.
          const tiny = await f32(random.uniform(k1, [1000], { minval: 1, maxval: 1 + 2 ** -22 }));
          assert.ok(tiny.every((x) => x >= 1 && x < 1 + 2 ** -22));

          const z = await f32(random.normal(k2, [n]));
          m = moments(z);
          assert.ok(Math.abs(m.mean) < 0.016, `normal mean ${m.mean}`);
          assert.ok(Math.abs(m.variance - 1) < 0.025, `normal variance ${m.variance}`);
          const tail = z.filter((x) => Math.abs(x) > 2).length / n;
          assert.ok(Math.abs(tail - 0.0455) < 0.0035, `P(|z| > 2) = ${tail}`);
          m = moments(await f32(random.normal(k2, [n], { mean: 2, stddev: 3 })));
          assert.ok(Math.abs(m.mean - 2) < 0.05 && Math.abs(m.variance - 9) < 0.25);

          const tn = await f32(random.truncatedNormal(k3, [n]));
          assert.ok(tn.every((x) => x > -2 && x < 2));
          m = moments(tn);
          // Variance of a standard normal truncated to (-2, 2): 1 - 4 phi(2) / (2 Phi(2) - 1).
          assert.ok(Math.abs(m.mean) < 0.015 && Math.abs(m.variance - 0.7737) < 0.02);

          const b = await random.bernoulli(k4, 0.3, [n]).data() as Uint8Array;
          const freq = b.reduce((s, x) => s + x, 0) / n;
          assert.ok(Math.abs(freq - 0.3) < 0.0075, `bernoulli frequency ${freq}`);
          assert.ok((await random.bernoulli(k4, 0, [1000]).data()).every((x) => x === 0));
          assert.ok((await random.bernoulli(k4, 1, [1000]).data()).every((x) => x === 1));

          const ints = await i32(random.randint(k5, [n], -3, 7));
          const counts = new Array(10).fill(0);
          for (const v of ints) {
            assert.ok(v >= -3 && v < 7);
            counts[v + 3]++;
          }
          // Chi-square with 9 degrees of freedom: 35 is beyond the 0.9999 quantile (33.7).
          const chi = counts.reduce((s, c) => s + (c - n / 10) ** 2 / (n / 10), 0);
          assert.ok(chi < 35, `randint chi-square ${chi}, counts ${counts}`);
          const wide = await i32(random.randint(k6, [1000], -(2 ** 31), 2 ** 31));
          assert.ok(wide.some((v) => v < 0) && wide.some((v) => v > 0));
        })
      ));
  }
});

Deno.test("bernoulli with a tensor of probabilities", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const key = random.key(3, { device });
          const p = T.tensor([0, 1, 0.5], { device });
          const x = await random.bernoulli(key, p, [2000, 3]).data();
          let half = 0;
          for (let i = 0; i < 2000; i++) {
            assert.equal(x[3 * i], 0);
            assert.equal(x[3 * i + 1], 1);
            half += x[3 * i + 2];
          }
          assert.ok(Math.abs(half / 2000 - 0.5) < 0.06);
          // A scalar tensor p gives exactly the mask of the number p.
          assert.deepEqual(
            await random.bernoulli(key, T.tensor(0.3, { device }), [500]).data(),
            await random.bernoulli(key, 0.3, [500]).data(),
          );
          assert.deepEqual(random.bernoulli(key, p).shape, [3]);
          assert.equal(random.bernoulli(key, 0.5).shape.length, 0);
        })
      ));
  }
});

Deno.test("permutation", async (t) => {
  const isPerm = (a: Int32Array, n: number) =>
    a.length === n && [...a].sort((x, y) => x - y).every((v, i) => v === i);
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(async () => {
          const key = random.key(11, { device });
          for (const n of [0, 1, 2, 5, 100, 2000]) {
            const p = random.permutation(key, n);
            assert.equal(p.dtype, "i32");
            assert.ok(isPerm(await i32(p), n), `n = ${n}`);
          }
          const a = await i32(random.permutation(key, 100));
          assert.deepEqual(await i32(random.permutation(key, 100)), a);
          assert.notDeepEqual(await i32(random.permutation(random.key(12, { device }), 100)), a);
          assert.notDeepEqual(a, Int32Array.from({ length: 100 }, (_, i) => i));
          const x = T.tensor([[0, 1], [10, 11], [20, 21], [30, 31], [40, 41]], { device });
          const perm = await i32(random.permutation(key, 5));
          const rows = await random.permutation(key, x).array() as number[][];
          assert.deepEqual(rows, [...perm].map((i) => [10 * i, 10 * i + 1]));
          const v = T.tensor(new Int32Array([5, 6, 7]), { device });
          const pv = await i32(random.permutation(key, v));
          assert.deepEqual(
            pv,
            Int32Array.from(await i32(random.permutation(key, 3)), (i) => i + 5),
          );
        })
      ));
  }
});

Deno.test("random ops validate their arguments", async () => {
  await noLeaks(() =>
    T.scope(() => {
      const key = random.key(0, { device: "cpu-reference" });
      const keys = random.split(key, 3);
      const cpu = { device: "cpu-reference" } as const;
      const bad = [
        T.tensor([0, 0], cpu),
        T.tensor(new Uint32Array(3), cpu),
        T.tensor(new Int32Array(2), cpu),
      ];
      for (const k of bad) {
        assert.throws(() => random.bits(k, [2]), {
          name: "TypeError",
          message: /random\.bits: key must be a u32 tensor of shape \[2\]/,
        });
      }
      assert.throws(() => random.uniform(keys, [2]), { message: /pick one row with random\.at/ });
      assert.throws(() => random.normal(null as unknown as T.Tensor, [2]), TypeError);
      const gone = random.key(1, { device: "cpu-reference" });
      gone.dispose();
      assert.throws(() => random.split(gone), { name: "TypeError", message: /was disposed/ });
      assert.throws(() => random.key(1.5), { name: "TypeError", message: /random\.key: seed/ });
      assert.throws(() => random.key(2 ** 53), TypeError);
      assert.throws(() => random.foldIn(key, 0.5), TypeError);
      for (const n of [-1, 1.5, NaN, 2 ** 31]) {
        assert.throws(() => random.split(key, n), {
          name: "RangeError",
          message: /random\.split: n/,
        });
        assert.throws(() => random.splitN(key, n), RangeError);
        assert.throws(() => random.permutation(key, n), RangeError);
      }
      assert.throws(() => random.permutation(key, T.tensor(3, cpu)), RangeError);
      assert.throws(() => random.at(keys, 3), {
        name: "RangeError",
        message: /random\.at: index 3/,
      });
      assert.throws(() => random.at(key, 0), TypeError);
      assert.throws(() => random.bits(key, [-1]), { name: "TypeError", message: /shape/ });
      assert.throws(() => random.bits(key, [1.5]), TypeError);
      assert.throws(() => random.uniform(key, [2], { minval: 1, maxval: 1 }), {
        name: "RangeError",
        message: /random\.uniform: minval 1 must be below maxval 1/,
      });
      assert.throws(() => random.uniform(key, [2], { minval: 2, maxval: 1 }), RangeError);
      assert.throws(() => random.uniform(key, [2], { maxval: Infinity }), TypeError);
      assert.throws(() => random.uniform(key, [2], { minval: -3e38, maxval: 3e38 }), RangeError);
      assert.throws(() => random.normal(key, [2], { stddev: -1 }), RangeError);
      assert.throws(() => random.normal(key, [2], { mean: NaN }), TypeError);
      assert.throws(() => random.truncatedNormal(key, [2], { lower: 1, upper: 0 }), RangeError);
      assert.throws(() => random.randint(key, [2], 5, 5), {
        name: "RangeError",
        message: /random\.randint: need -2\^31 <= minval < maxval <= 2\^31/,
      });
      assert.throws(() => random.randint(key, [2], 0, 2 ** 31 + 1), RangeError);
      assert.throws(() => random.randint(key, [2], 0.5, 3), TypeError);
      for (const p of [-0.1, 1.5, NaN]) {
        assert.throws(() => random.bernoulli(key, p, [2]), {
          name: "RangeError",
          message: /random\.bernoulli: p must be a number in \[0, 1\]/,
        });
      }
      assert.throws(() => random.bernoulli(key, T.tensor(new Int32Array([1]), cpu)), TypeError);
      assert.throws(() => random.bernoulli(key, T.zeros([3], cpu), [2]), RangeError);
      assert.throws(() => random.bernoulli(key, T.zeros([3], cpu), [1]), RangeError);
    })
  );
});
