import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, testDevices } from "../util.ts";

Deno.test("a tensor iterates along its first axis", async (t) => {
  for (const device of testDevices()) {
    await t.step(`rows, keys and scopes on ${device}`, async () => {
      await noLeaks(async () => {
        const x = T.tensor([[1, 2, 3], [4, 5, 6]], { device });
        const [a, b] = x;
        x.dispose(); // the rows are copies the caller owns
        assert.deepEqual(a.shape, [3]);
        assert.deepEqual(await a.array(), [1, 2, 3]);
        assert.deepEqual(await b.array(), [4, 5, 6]);
        a.dispose();
        b.dispose();

        using key = T.random.key(7, { device });
        using keys = T.random.split(key, 3);
        const [k0, k1, k2] = keys;
        for (const [i, k] of [k0, k1, k2].entries()) {
          using want = T.random.at(keys, i);
          assert.deepEqual(await k.array(), await want.array());
          k.dispose();
        }

        // Inside scope, rows belong to the scope: only the returned ones survive.
        const kept = T.scope(() => {
          const rows = [...T.tensor([[0, 1], [2, 3], [4, 5]], { device })];
          return rows[2];
        });
        assert.deepEqual(await kept.array(), [4, 5]);
        kept.dispose();

        // Destructuring makes only the rows it names.
        using big = T.zeros([100, 4], { device });
        const before = T.memory(device).liveTensors;
        const [first] = big;
        assert.equal(T.memory(device).liveTensors, before + 1);
        first.dispose();

        // Scalars per element of a 1-D tensor; a 0-d tensor has nothing to iterate.
        using v = T.tensor([5, 6], { device });
        const elems = T.scope(() => Array.from(v, (e) => e.shape.length));
        assert.deepEqual(elems, [0, 0]);
        using s = T.tensor(3, { device });
        assert.throws(() => [...s], {
          name: "TypeError",
          message: /iteration over a 0-d tensor: Tensor\(f32\[\] on [\w-]+\) has no first axis/,
        });
        const gone = T.ones([2], { device });
        gone.dispose();
        assert.throws(() => [...gone], { name: "TypeError", message: /was disposed/ });
      });
    });
    await t.step(`gradients flow through the rows on ${device}`, async () => {
      await noLeaks(() =>
        T.scope(async () => {
          const x = T.tensor([[1, 2], [3, 4]], { device });
          const g = T.grad((m: T.Tensor) => {
            const [r0, r1] = m;
            return T.sum(T.mul(r0, r1));
          })(x) as T.Tensor;
          assert.deepEqual(await g.array(), [[3, 4], [1, 2]]);
        })
      );
    });
  }
});
