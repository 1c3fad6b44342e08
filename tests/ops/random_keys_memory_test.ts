import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { random } from "../../ops/random.ts";
import { noLeaks, testDevices } from "../util.ts";

const u32 = async (t: T.Tensor) => Array.from(await t.data());
/** A key tensor made outside `random`: its children come from the `random` kernel. */
const rawKey = (words: ArrayLike<number>, device: T.DeviceName) =>
  T.tensor(Uint32Array.from(words), { dtype: "u32", device });

Deno.test("keys need no dispose: the common idioms leak nothing", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () => {
      const before = T.memory(device);
      // Issue 14's loop: only the outer key is disposed, as users write it.
      for (let i = 0; i < 100; i++) random.foldIn(random.key(1, { device }), i).dispose();
      // Nothing disposed at all: keys, split rows, destructured splits.
      for (let i = 0; i < 20; i++) {
        const [k1, k2] = random.split(random.foldIn(random.key(i, { device }), 3));
        random.splitN(k1, 3);
        random.at(random.split(k2, 4), -1);
      }
      const after = T.memory(device);
      assert.equal(after.liveTensors, before.liveTensors);
      assert.equal(after.liveBytes, before.liveBytes);
    });
  }
});

Deno.test("keys outlive scopes and still dispose at once", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        const k = T.scope(() => {
          const inner = random.key(5, { device });
          random.foldIn(inner, 1);
          return random.foldIn(inner, 2);
        });
        assert.deepEqual(await u32(k), await u32(random.foldIn(random.key(5, { device }), 2)));
        const before = T.memory(device).constantBytes;
        const gone = random.key(9, { device });
        assert.ok(T.memory(device).constantBytes > before, "key bytes count as constants");
        gone.dispose();
        gone.dispose();
        assert.equal(T.memory(device).constantBytes, before);
        assert.throws(() => random.foldIn(gone, 0), { name: "TypeError", message: /disposed/ });
        // A view of a key is an ordinary tensor: it counts until disposed.
        const view = k.view([1, 2]);
        view.dispose();
      }));
  }
});

Deno.test("keys derived on the host equal the random kernel's", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(async () => {
        for (const seed of [0, 1, 42, -1, 2 ** 40 + 5]) {
          const k = random.key(seed, { device });
          using raw = rawKey(await k.data(), device);
          for (const n of [0, 1, 2, 5]) {
            using a = random.split(raw, n);
            assert.deepEqual(await u32(random.split(k, n)), await u32(a));
            const viaRaw = random.splitN(raw, n), viaHost = random.splitN(k, n);
            for (let i = 0; i < n; i++) {
              assert.deepEqual(await u32(viaHost[i]), await u32(viaRaw[i]));
              assert.deepEqual(await u32(random.at(random.split(k, n), i)), await u32(viaRaw[i]));
              assert.deepEqual(await u32(random.at(a, i - n)), await u32(viaRaw[i]));
            }
          }
          for (const data of [0, 1, 7, 2 ** 32 - 1, 2 ** 32, 2 ** 33 + 5, -1, -(2 ** 40)]) {
            assert.deepEqual(
              await u32(random.foldIn(k, data)),
              await u32(random.foldIn(raw, data)),
              `foldIn(key(${seed}), ${data})`,
            );
          }
          // Chains stay on the host and match the kernel at every level.
          const [, c2] = random.split(random.foldIn(k, 11));
          const [, r2] = random.split(random.foldIn(raw, 11));
          assert.deepEqual(await u32(c2), await u32(r2));
          // Samplers read the same words either way.
          using x = random.normal(raw, [9]);
          using y = random.normal(k, [9]);
          assert.deepEqual(await y.data(), await x.data());
        }
      }));
  }
});

Deno.test("deriving keys on WebGPU dispatches, submits and reads back nothing", async () => {
  if (!testDevices().includes("webgpu")) return;
  const device = "webgpu";
  await T.sync(device);
  const counts = { dispatch: 0, submit: 0, read: 0 };
  type Methods = Record<string, (...a: unknown[]) => unknown>;
  const targets: [unknown, string, keyof typeof counts][] = [
    [GPUComputePassEncoder.prototype, "dispatchWorkgroups", "dispatch"],
    [GPUQueue.prototype, "submit", "submit"],
    [GPUBuffer.prototype, "mapAsync", "read"],
  ];
  const patches = targets.map(([proto, name, what]) => {
    const p = proto as Methods;
    const f = p[name];
    p[name] = function (this: unknown, ...a: unknown[]) {
      counts[what]++;
      return f.apply(this, a);
    };
    return [p, name, f] as const;
  });
  try {
    const k = random.foldIn(random.key(3, { device }), 5);
    const [a, b] = random.split(k);
    random.splitN(a, 4);
    random.at(random.split(b, 3), 1);
    // Keys upload their words (a queue write, or a copy recorded with the pending commands);
    // nothing is dispatched, submitted or read back.
    assert.deepEqual(counts, { dispatch: 0, submit: 0, read: 0 });
    await T.sync(device);
  } finally {
    for (const [p, name, f] of patches) p[name] = f;
  }
});
