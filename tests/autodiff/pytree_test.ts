import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import {
  describeTree,
  disposeTree,
  flattenTree,
  leafPaths,
  leavesLike,
  mapTree,
  treeTensors,
  unflattenTree,
} from "../../autodiff/pytree.ts";
import { noLeaks } from "../util.ts";

Deno.test("pytree: arrays, plain objects and Maps are containers; order and round trip", () =>
  noLeaks(() => {
    const w = T.tensor([1, 2]), b = T.tensor([3]);
    const tree = { layers: [{ w, b }], extra: new Map<unknown, unknown>([["s", 2], [7, b]]), n: 5 };
    const [leaves, def] = flattenTree(tree);
    assert.deepEqual(leaves, [w, b, 2, b, 5]);
    assert.deepEqual(leafPaths(def), [
      "layers[0].w",
      "layers[0].b",
      "extra.get(s)",
      "extra.get(7)",
      "n",
    ]);
    assert.equal(describeTree(def), "{layers: [{w: *, b: *}], extra: Map{s: *, 7: *}, n: *}");
    const back = unflattenTree<typeof tree>(def, leaves);
    assert.ok(back.extra instanceof Map);
    assert.deepEqual([...back.extra.keys()], ["s", 7]);
    assert.equal(back.extra.get(7), b);
    assert.deepEqual(mapTree(tree, (x) => (x instanceof T.Tensor ? x.shape : x)), {
      layers: [{ w: [2], b: [1] }],
      extra: new Map<unknown, unknown>([["s", 2], [7, [1]]]),
      n: 5,
    });
    // Matching by structure, Maps included.
    assert.deepEqual(leavesLike("t", def, tree, "tree"), leaves);
    assert.throws(
      () => leavesLike("t", def, { ...tree, extra: new Map([["s", 2]]) }, "tree"),
      /extra: expected Map keys s, 7|at \.extra/,
    );
    // Class instances and tensors are leaves.
    assert.equal(flattenTree(new Date(0))[0].length, 1);
    assert.deepEqual(treeTensors(tree), [w, b, b]);
    w.dispose(), b.dispose();
  }));

Deno.test("disposeTree disposes every tensor once, shared leaves included, and nothing else", () =>
  noLeaks(() => {
    const shared = T.ones([3]);
    let calls = 0;
    const dispose = shared.dispose.bind(shared);
    shared.dispose = () => (calls++, dispose());
    const other = T.zeros([2]);
    const untouched = T.zeros([1]);
    const view = untouched.view([1]); // another handle on the same storage, not in the tree
    const tree = { a: shared, b: [shared, { c: shared }], m: new Map([["o", other]]), s: "x" };
    disposeTree(tree);
    assert.equal(calls, 1);
    assert.ok(shared.disposed && other.disposed);
    assert.ok(!untouched.disposed && !view.disposed);
    disposeTree([view, untouched, null, undefined, 3]);
    assert.ok(untouched.disposed && view.disposed);
  }));

Deno.test("scope keeps the tensors of a returned Map", async () => {
  await noLeaks(async () => {
    const m = T.scope(() => new Map([["x", T.add(T.ones([2]), 1)]]));
    assert.deepEqual(await m.get("x")!.array(), [2, 2]);
    disposeTree(m);
  });
});
