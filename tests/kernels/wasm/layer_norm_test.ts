import assert from "node:assert/strict";
import type { WasmDevice } from "../../../kernels/wasm/device.ts";
import {
  layerNormGradWasm,
  type LayerNormSpec,
  layerNormWasm,
} from "../../../kernels/wasm/layer_norm.ts";
import { assertClose, randomArray, rng, sameBits, withDevices } from "./helpers.ts";

/** Float64 reference: `[y, mean, rstd]`. */
function reference(
  x: Float32Array,
  g: Float32Array | null,
  b: Float32Array | null,
  s: LayerNormSpec,
) {
  const y = new Float32Array(s.rows * s.n), mean = new Float32Array(s.rows);
  const rstd = new Float32Array(s.rows);
  for (let r = 0; r < s.rows; r++) {
    let m = 0, v = 0;
    for (let i = 0; i < s.n; i++) m += x[r * s.n + i];
    m /= s.n;
    for (let i = 0; i < s.n; i++) v += (x[r * s.n + i] - m) ** 2;
    const rs = 1 / Math.sqrt(v / s.n + s.eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let i = 0; i < s.n; i++) {
      y[r * s.n + i] = (x[r * s.n + i] - m) * rs * (g ? g[i] : 1) + (b ? b[i] : 0);
    }
  }
  return [y, mean, rstd];
}

async function run(
  dev: WasmDevice,
  data: (Float32Array | null)[],
  s: LayerNormSpec,
): Promise<Float32Array[]> {
  const st = data.map((d) => (d ? dev.upload(d, "f32") : null));
  const outs = layerNormWasm(dev, st, s);
  const res = await Promise.all(outs.map((o, i) => dev.read(o, "f32", i ? s.rows : s.rows * s.n)));
  for (const x of [...st, ...outs]) if (x) dev.free(x);
  return res as Float32Array[];
}

Deno.test("wasm layer norm matches a float64 reference", async (t) => {
  const rand = rng(21);
  const cases: [string, LayerNormSpec, boolean][] = [
    ["odd width with gamma and beta", { rows: 3, n: 37, eps: 1e-5 }, true],
    ["no affine", { rows: 2, n: 8, eps: 1e-5 }, false],
    ["width 1", { rows: 4, n: 1, eps: 1e-5 }, true],
    ["no rows", { rows: 0, n: 5, eps: 1e-5 }, true],
    ["parallel rows", { rows: 70, n: 513, eps: 1e-6 }, true],
  ];
  await withDevices(async (one, two) => {
    for (const [name, s, affine] of cases) {
      await t.step(name, async () => {
        const x = randomArray(rand, s.rows * s.n, -3, 5);
        const g = affine ? randomArray(rand, s.n, 0.5, 1.5) : null;
        const b = affine ? randomArray(rand, s.n) : null;
        const want = reference(x, g, b, s);
        const r1 = await run(one, [x, g, b], s);
        const r2 = await run(two, [x, g, b], s);
        ["y", "mean", "rstd"].forEach((what, i) => {
          assertClose(r1[i], want[i], 1e-5, 1e-5, `${name} ${what}`);
          assert.ok(sameBits(r1[i], r2[i]), `${name} ${what}: 1 and 2 threads differ`);
        });
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});

/** Float64 backward from the f32 `mean` and `rstd`: `[dx, dgamma, dbeta]`. */
function gradReference(
  x: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  dy: Float32Array,
  g: Float32Array | null,
  { rows, n }: LayerNormSpec,
) {
  const dx = new Float64Array(rows * n), dg = new Float64Array(n), db = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const hat = (j: number) => (x[r * n + j] - mean[r]) * rstd[r];
    const gg = (j: number) => dy[r * n + j] * (g ? g[j] : 1);
    let s1 = 0, s2 = 0;
    for (let j = 0; j < n; j++) {
      s1 += gg(j);
      s2 += gg(j) * hat(j);
      dg[j] += dy[r * n + j] * hat(j);
      db[j] += dy[r * n + j];
    }
    for (let j = 0; j < n; j++) dx[r * n + j] = rstd[r] * (gg(j) - s1 / n - hat(j) * s2 / n);
  }
  return g ? [dx, dg, db] : [dx];
}

Deno.test("wasm layer norm backward matches float64, with 1 and 2 threads bit for bit", async (t) => {
  const rand = rng(22);
  const cases: [string, LayerNormSpec, boolean][] = [
    ["odd width", { rows: 3, n: 37, eps: 1e-5 }, true],
    ["no affine", { rows: 2, n: 8, eps: 1e-5 }, false],
    ["width 1", { rows: 4, n: 1, eps: 1e-5 }, true],
    ["width 3", { rows: 5, n: 3, eps: 1e-5 }, true],
    ["no rows", { rows: 0, n: 5, eps: 1e-5 }, true],
    ["parallel rows, several row blocks", { rows: 150, n: 259, eps: 1e-6 }, true],
    ["more rows than blocks of the minimum size", { rows: 9001, n: 5, eps: 1e-6 }, true],
    ["parallel rows, no affine", { rows: 150, n: 259, eps: 1e-6 }, false],
  ];
  await withDevices(async (one, two) => {
    for (const [name, s, affine] of cases) {
      await t.step(name, async () => {
        const x = randomArray(rand, s.rows * s.n, -3, 5);
        const g = affine ? randomArray(rand, s.n, 0.5, 1.5) : null;
        const dy = randomArray(rand, s.rows * s.n);
        const [, mean, rstd] = reference(x, g, null, s);
        const want = gradReference(x, mean, rstd, dy, g, s);
        const got = await Promise.all([one, two].map(async (dev) => {
          const st = [x, mean, rstd, dy, g].map((d) => (d ? dev.upload(d, "f32") : null));
          const outs = layerNormGradWasm(dev, st, s);
          const sizes = [s.rows * s.n, s.n, s.n];
          const res = await Promise.all(outs.map((o, i) => dev.read(o, "f32", sizes[i])));
          for (const v of [...st, ...outs]) if (v) dev.free(v);
          return res as Float32Array[];
        }));
        assert.equal(got[0].length, affine ? 3 : 1);
        want.forEach((w, i) => {
          const what = `${name} ${["dx", "dgamma", "dbeta"][i]}`;
          assertClose(got[0][i], w, 1e-4 * Math.sqrt(i ? s.rows + 1 : 1), 1e-5, what);
          assert.ok(sameBits(got[0][i], got[1][i]), `${what}: 1 and 2 threads differ`);
        });
      });
    }
    for (const d of [one, two]) assert.equal(d.memory().liveBytes, 0);
  });
});
