/**
 * Tests of einsum (against a loop-over-labels reference), outer and topk on every device, and
 * finite-difference checks of their gradients.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, randomArray, rng, testDevices } from "../util.ts";
import { checkGrad, distinct } from "../autodiff/gradcheck.ts";

/** Float64 einsum by looping over every assignment of the labels (explicit "->" only). */
function refEinsum(spec: string, shapes: number[][], data: Float32Array[]): number[] {
  const [lhs, out] = spec.split("->");
  const ins = lhs.split(",").map((p) => [...p]);
  const size = new Map<string, number>();
  ins.forEach((ls, i) =>
    ls.forEach((l, d) => size.set(l, Math.max(size.get(l) ?? 1, shapes[i][d])))
  );
  const labels = [...size.keys()];
  const outL = [...out];
  const res = new Float64Array(outL.reduce((p, l) => p * size.get(l)!, 1));
  const val = new Map<string, number>();
  const at = (ls: string[], shape: number[]) =>
    ls.reduce((p, l, d) => p * shape[d] + (shape[d] === 1 ? 0 : val.get(l)!), 0);
  const walk = (k: number) => {
    if (k === labels.length) {
      let prod = 1;
      ins.forEach((ls, i) => (prod *= data[i][at(ls, shapes[i])]));
      res[at(outL, outL.map((l) => size.get(l)!))] += prod;
      return;
    }
    for (let v = 0; v < size.get(labels[k])!; v++) (val.set(labels[k], v), walk(k + 1));
  };
  walk(0);
  return [...res];
}

const CASES: [string, number[][]][] = [
  ["bhqd,bhkd->bhqk", [[2, 2, 3, 4], [2, 2, 5, 4]]],
  ["bhqk,bhkd->bhqd", [[2, 2, 3, 5], [2, 2, 5, 4]]],
  ["ij,jk->ik", [[3, 4], [4, 2]]],
  ["bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]],
  ["i,j->ij", [[3], [4]]],
  ["ii->i", [[4, 4]]],
  ["ii->", [[3, 3]]],
  ["ij->ji", [[2, 3]]],
  ["ij->j", [[2, 3]]],
  ["i,i->", [[5], [5]]],
  ["ij,kj->ik", [[3, 4], [2, 4]]],
  ["ji,jk->ik", [[4, 3], [4, 2]]],
  ["bqd,kd->bqk", [[2, 3, 4], [5, 4]]],
  ["ijk,ik->j", [[2, 3, 4], [2, 4]]],
  ["ij,jk,kl->il", [[2, 3], [3, 4], [4, 2]]],
  ["iij,jk->ik", [[3, 3, 2], [2, 4]]],
  ["bij,bjk->bik", [[1, 3, 4], [2, 4, 5]]],
  ["ab,cd->dacb", [[2, 3], [4, 1]]],
];

Deno.test("einsum against a float64 reference", async (t) => {
  const rand = rng(41);
  for (const device of testDevices()) {
    for (const [spec, shapes] of CASES) {
      await t.step(`${spec} on ${device}`, async () => {
        await noLeaks(() =>
          T.scope(async () => {
            const data = shapes.map((s) => randomArray(rand, s.reduce((a, b) => a * b, 1)));
            const xs = data.map((d, i) => T.tensor(d, { shape: shapes[i], device }));
            const y = T.einsum(spec, ...xs);
            await T.assertAllClose(y, refEinsum(spec, shapes, data), { rtol: 1e-5, atol: 1e-5 });
          })
        );
      });
    }
    await t.step(`ellipsis, implicit output and dtypes on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const a = T.reshape(T.arange(24, undefined, 1, { device }), [2, 3, 4]);
          const b = T.reshape(T.arange(8, undefined, 1, { device }), [4, 2]);
          const want = await T.matmul(a, b).array();
          assert.deepEqual(await T.einsum("...ij,...jk->...ik", a, b).array(), want);
          assert.deepEqual(await T.einsum("bij,jk", a, b).array(), want);
          assert.deepEqual(await T.einsum("ij", b).array(), await b.array());
          assert.equal(T.einsum("ij->j", b).dtype, "i32");
          assert.deepEqual(await T.einsum("ij -> j", b).array(), [12, 16]);
          assert.deepEqual(T.einsum("...i->...", a).shape, [2, 3]);
          assert.deepEqual(await T.outer(T.tensor([[1], [2]], { device }), b).array(), [
            [0, 1, 2, 3, 4, 5, 6, 7],
            [0, 2, 4, 6, 8, 10, 12, 14],
          ]);
        })
      );
    });
  }
  await t.step("errors name einsum and the subscripts", () => {
    T.scope(() => {
      const a = T.ones([2, 3]), b = T.ones([4, 2]);
      assert.throws(
        () => T.einsum("ij,jk->ik", a, b),
        /einsum: "ij,jk->ik": label j has sizes 3 and 4/,
      );
      assert.throws(
        () => T.einsum("ijk->i", a),
        /operand 0 "ijk" has 3 label\(s\) for a tensor of rank 2/,
      );
      assert.throws(() => T.einsum("ij,jk->ik", a), /names 2 operand\(s\), got 1/);
      assert.throws(() => T.einsum("ij->iz", a), /output label z is in no operand/);
      assert.throws(() => T.einsum("ij->ii", a), /output label i repeats/);
      assert.throws(() => T.einsum("i1->i", a), /unexpected character "1"/);
      assert.throws(() => T.einsum("ii->i", a), /einsum: "ii->i": label i has sizes 2 and 3/);
      assert.throws(() => T.einsum("...i->i", T.ones([2, 3])), /the output needs "..."/);
    });
  });
});

Deno.test("topk", async (t) => {
  for (const device of testDevices()) {
    await t.step(`values, stable ties and NaN on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([[2, 7, 7, 1, 7], [NaN, 0, 3, 3, -1]], { device });
          const [v, i] = T.topk(x, 3);
          assert.deepEqual(await v.array(), [[7, 7, 7], [NaN, 3, 3]]);
          assert.deepEqual(await i.array(), [[1, 2, 4], [0, 2, 3]]);
          assert.equal(i.dtype, "i32");
          const [s, si] = T.topk(x, 2, { largest: false });
          assert.deepEqual(await s.array(), [[1, 2], [-1, 0]]);
          assert.deepEqual(await si.array(), [[3, 0], [4, 1]]);
          assert.deepEqual(T.topk(x, 0)[0].shape, [2, 0]);
          assert.deepEqual(
            await T.topk(T.tensor(new Int32Array([4, 9, 1]), { device }), 3)[1].array(),
            [
              1,
              0,
              2,
            ],
          );
        })
      );
    });
  }
  await t.step("errors", () => {
    T.scope(() => {
      assert.throws(() => T.topk(T.ones([2, 3]), 4), /topk: k must be an integer in \[0, 3\]/);
      assert.throws(() => T.topk(T.tensor(1), 1), /topk: expected a tensor with at least one axis/);
    });
  });
});

Deno.test("gradients of einsum, outer and topk", async (t) => {
  const rand = rng(42);
  const cases = [
    ...["bhqd,bhkd->bhqk", "ij,jk,kl->il", "iij,jk->ik", "ij->ji", "bij,bjk->bik"].map((spec) => {
      const shapes = CASES.find(([s]) => s === spec)![1];
      return {
        name: `einsum ${spec}`,
        inputs: shapes.map((shape) => ({ shape })),
        fn: (xs: T.Tensor[]) => T.einsum(spec, ...xs),
      };
    }),
    {
      name: "outer",
      inputs: [{ shape: [3] }, { shape: [2, 2] }],
      fn: ([a, b]: T.Tensor[]) => T.outer(a, b),
    },
    {
      name: "topk",
      inputs: [{ shape: [3, 6], gen: distinct }],
      fn: ([x]: T.Tensor[]) => T.topk(x, 3)[0],
    },
  ];
  for (const device of testDevices()) {
    for (const c of cases) await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
  }
});
