/**
 * Tests of tile, repeat, flip, roll, moveaxis, flatten, tri, tril, triu, linspace, meshgrid
 * and fullLike on every device, and finite-difference checks of the gradients.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, rng, testDevices } from "../util.ts";
import { checkGrad } from "../autodiff/gradcheck.ts";

const iota = (shape: number[], device: T.DeviceName) =>
  T.reshape(T.arange(shape.reduce((a, b) => a * b, 1), undefined, 1, { device }), shape);

Deno.test("rearranging ops", async (t) => {
  for (const device of testDevices()) {
    await t.step(`tile and repeat on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = iota([2, 3], device);
          assert.deepEqual(await T.tile(x, [2, 1]).array(), [[0, 1, 2], [3, 4, 5], [0, 1, 2], [
            3,
            4,
            5,
          ]]);
          assert.deepEqual(await T.tile(x, 2).array(), [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]]);
          assert.deepEqual(T.tile(x, [2, 1, 3]).shape, [2, 2, 9]);
          assert.deepEqual(T.tile(x, [0, 1]).shape, [0, 3]);
          assert.deepEqual(await T.repeat(x, 2).array(), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
          assert.deepEqual(await T.repeat(x, 2, 0).array(), [[0, 1, 2], [0, 1, 2], [3, 4, 5], [
            3,
            4,
            5,
          ]]);
          assert.deepEqual(await T.repeat(x, [1, 0, 2], -1).array(), [[0, 2, 2], [3, 5, 5]]);
          assert.equal(T.repeat(T.tensor([true], { device }), 3).dtype, "bool");
        })
      );
    });
    await t.step(`flip, roll, moveaxis and flatten on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = iota([2, 3], device);
          assert.deepEqual(await T.flip(x, 0).array(), [[3, 4, 5], [0, 1, 2]]);
          assert.deepEqual(await T.flip(x, [-1]).array(), [[2, 1, 0], [5, 4, 3]]);
          assert.deepEqual(await T.flip(x).array(), [[5, 4, 3], [2, 1, 0]]);
          assert.deepEqual(await T.roll(x, 1).array(), [[5, 0, 1], [2, 3, 4]]);
          assert.deepEqual(await T.roll(x, -4, 1).array(), [[1, 2, 0], [4, 5, 3]]);
          assert.deepEqual(await T.roll(x, [1, 1], [0, 1]).array(), [[5, 3, 4], [2, 0, 1]]);
          assert.deepEqual(await T.roll(x, 3, 1).array(), [[0, 1, 2], [3, 4, 5]]);
          assert.deepEqual(await T.roll(x, 1, [0, 1]).array(), [[5, 3, 4], [2, 0, 1]]);
          const y = iota([2, 3, 4], device);
          const m = T.moveaxis(y, -1, 0);
          assert.deepEqual(m.shape, [4, 2, 3]);
          assert.deepEqual(await m.array(), await T.transpose(y, [2, 0, 1]).array());
          assert.deepEqual(T.moveaxis(y, [0, 2], [2, 0]).shape, [4, 3, 2]);
          assert.deepEqual(T.flatten(y, 0, 1).shape, [6, 4]);
          assert.deepEqual(T.flatten(y, -2).shape, [2, 12]);
          assert.deepEqual(T.flatten(T.tensor(3, { device })).shape, [1]);
        })
      );
    });
    await t.step(`tri, tril and triu on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          assert.deepEqual(await T.tri(3, 3, 0, { dtype: "bool", device }).array(), [
            [true, false, false],
            [true, true, false],
            [true, true, true],
          ]);
          assert.deepEqual(await T.tri(2, 4, 1, { device }).array(), [[1, 1, 0, 0], [1, 1, 1, 0]]);
          assert.equal(T.tri(2, 2, 0, { dtype: "i32", device }).dtype, "i32");
          const x = T.add(iota([2, 3, 4], device), 1);
          const lo = await T.tril(x, -1).data();
          const hi = await T.triu(x, 2).data();
          const xv = await x.data();
          for (let b = 0; b < 2; b++) {
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 4; j++) {
                const at = b * 12 + i * 4 + j;
                assert.equal(lo[at], j <= i - 1 ? xv[at] : 0);
                assert.equal(hi[at], j >= i + 2 ? xv[at] : 0);
              }
            }
          }
          const bx = T.tensor([[true, true], [true, true]], { device });
          assert.deepEqual(await T.triu(bx).array(), [[true, true], [false, true]]);
        })
      );
    });
    await t.step(`linspace, meshgrid and fullLike on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const l = T.linspace(-1, 2, 7, { device });
          assert.equal(l.device, device);
          await T.assertAllClose(l, [-1, -0.5, 0, 0.5, 1, 1.5, 2]);
          assert.deepEqual(await T.linspace(3, 3, 1, { device }).array(), [3]);
          assert.deepEqual(await T.linspace(0, 10, 3, { dtype: "i32", device }).array(), [
            0,
            5,
            10,
          ]);
          assert.deepEqual(T.linspace(0, 1, 0, { device }).shape, [0]);
          const [a, b, c] = T.meshgrid([
            T.tensor([1, 2], { device }),
            T.tensor([3, 4, 5], { device }),
            T.tensor([6], { device }),
          ], { indexing: "ij" });
          assert.deepEqual(a.shape, [2, 3, 1]);
          assert.deepEqual(await b.array(), [[[3], [4], [5]], [[3], [4], [5]]]);
          assert.deepEqual(await c.array(), [[[6], [6], [6]], [[6], [6], [6]]]);
          const [gx] = T.meshgrid([T.tensor([1, 2], { device }), T.tensor([3, 4, 5], { device })]);
          assert.deepEqual(await gx.array(), [[1, 2], [1, 2], [1, 2]]);
          const f = T.fullLike(T.tensor(new Int32Array([1, 2]), { device }), 9);
          assert.equal(f.dtype, "i32");
          assert.equal(f.device, device);
          assert.deepEqual(await f.array(), [9, 9]);
        })
      );
    });
  }
  await t.step("errors name the op and the rule", () => {
    T.scope(() => {
      const x = T.ones([2, 3]);
      assert.throws(() => T.tile(x, [-1]), /tile: reps must be non-negative integers/);
      assert.throws(() => T.repeat(x, [1, 2], 1), /repeat: 2 repeat counts for axis 1/);
      assert.throws(
        () => T.roll(x, [1, 2], 0),
        /roll: 2 shifts for 1 axes; give one shift per axis/,
      );
      assert.throws(() => T.roll(x, 1.5), /roll: shifts must be integers/);
      assert.throws(() => T.moveaxis(x, [0, 0], [0, 1]), /moveaxis: source/);
      assert.throws(() => T.flatten(x, 1, 0), /flatten: startAxis 1 comes after endAxis 0/);
      assert.throws(() => T.tril(T.ones([3])), /tril: needs at least 2 axes/);
      assert.throws(() => T.triu(x, 0.5), /triu: diagonal offset k must be an integer/);
      assert.throws(() => T.linspace(0, 1, -1), /linspace: num must be/);
      assert.throws(() => T.flip(x, 2), /flip: axis 2 is out of range/);
    });
  });
});

Deno.test("gradients of the rearranging ops", async (t) => {
  const rand = rng(31);
  const cases = [
    { name: "tile", inputs: [{ shape: [2, 3] }], fn: ([x]: T.Tensor[]) => T.tile(x, [2, 1, 2]) },
    { name: "repeat", inputs: [{ shape: [2, 3] }], fn: ([x]: T.Tensor[]) => T.repeat(x, 3, 1) },
    {
      name: "repeat counts",
      inputs: [{ shape: [3, 2] }],
      fn: ([x]: T.Tensor[]) => T.repeat(x, [2, 0, 3], 0),
    },
    { name: "flip", inputs: [{ shape: [2, 3, 2] }], fn: ([x]: T.Tensor[]) => T.flip(x, [0, 2]) },
    {
      name: "roll",
      inputs: [{ shape: [3, 4] }],
      fn: ([x]: T.Tensor[]) => T.roll(x, [1, -1], [0, 1]),
    },
    {
      name: "moveaxis",
      inputs: [{ shape: [2, 3, 4] }],
      fn: ([x]: T.Tensor[]) => T.moveaxis(x, 0, 2),
    },
    { name: "tril", inputs: [{ shape: [2, 3, 3] }], fn: ([x]: T.Tensor[]) => T.tril(x, 0) },
    { name: "triu", inputs: [{ shape: [3, 4] }], fn: ([x]: T.Tensor[]) => T.triu(x, 1) },
    {
      name: "meshgrid",
      inputs: [{ shape: [3] }, { shape: [2] }],
      fn: ([x, y]: T.Tensor[]) => T.scope(() => T.stack(T.meshgrid([x, y]))),
    },
  ];
  for (const device of testDevices()) {
    for (const c of cases) await t.step(`${c.name} on ${device}`, () => checkGrad(c, device, rand));
  }
});
