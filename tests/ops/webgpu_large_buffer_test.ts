/**
 * Tensors larger than one WebGPU storage binding: with the binding limit lowered to a few KiB,
 * elementwise ops, copies, casts and concatenation split their dispatches over windows and
 * agree with the unsplit run and the CPU reference; kernels that cannot split refuse.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { random } from "../../mod.ts";
import { noLeaks, randomArray, rng } from "../util.ts";
import { gpu, lowered, refusesBinding, splitMatches } from "./large_buffer_util.ts";

const KiB = 1024;
const data = (seed: number, n: number) => randomArray(rng(seed), n, -2, 2);
const on = (device: T.DeviceName, seed: number, shape: number[]) =>
  T.tensor(data(seed, shape.reduce((a, b) => a * b, 1)), { shape, device });

Deno.test({
  name: "webgpu: elementwise ops split past the binding limit",
  ignore: !gpu,
  fn: async (t) => {
    const d = gpu!;
    await t.step(
      "binary, same shapes",
      () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (dev) => T.add(on(dev, 1, [37, 61]), on(dev, 2, [37, 61])))
        ),
    );
    await t.step(
      "broadcast row and column",
      () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (dev) => T.mul(on(dev, 1, [53, 1, 40]), on(dev, 2, [1, 7, 40])))
        ),
    );
    await t.step("where, three inputs", () =>
      noLeaks(() =>
        splitMatches(d, 4 * KiB, (dev) => {
          const a = on(dev, 3, [31, 70]);
          return T.where(T.greater(a, 0), a, on(dev, 4, [70]));
        })
      ));
    // Gathering heads ([heads, len, dim] to [len, heads, dim]) is the layout whose pieces
    // read narrow windows; the reverse reads every head for each position.
    await t.step("transposed input", () =>
      noLeaks(() =>
        splitMatches(
          d,
          4 * KiB,
          (dev) => T.neg(T.transpose(on(dev, 5, [300, 4, 8]), [1, 0, 2])),
        )
      ));
    await t.step(
      "reversed slice (negative strides)",
      () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (dev) => {
            const x = on(dev, 6, [3000]);
            return T.add(T.slice(x, [2999], [undefined], [-1]), 1);
          })
        ),
    );
    await t.step("casts to and from i32", () =>
      noLeaks(() =>
        splitMatches(
          d,
          4 * KiB,
          (dev) => T.cast(T.cast(T.mul(on(dev, 7, [2500]), 100), "i32"), "f32"),
        )
      ));
    await t.step({
      name: "f16 add and a cast to f16",
      ignore: !d.hasF16,
      fn: () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (dev) => {
            const a = T.cast(on(dev, 10, [33, 70]), "f16");
            return [T.cast(T.add(a, T.cast(on(dev, 11, [70]), "f16")), "f32"), T.cast(a, "f32")];
          }, 1e-3)
        ),
    });
    await t.step("a slice of a large tensor", () =>
      noLeaks(() =>
        splitMatches(
          d,
          4 * KiB,
          (dev) => T.exp(T.slice(on(dev, 8, [40, 50]), [30, 0], [31, 50])),
          1e-6,
        )
      ));
  },
});

Deno.test({
  name: "webgpu: copies, padding and concatenation split past the binding limit",
  ignore: !gpu,
  fn: async (t) => {
    const d = gpu!;
    await t.step("concat along each axis", () =>
      noLeaks(() =>
        splitMatches(d, 4 * KiB, (dev) => {
          const a = on(dev, 1, [20, 60]), b = on(dev, 2, [20, 45]);
          return [T.concat([a, b], 1), T.concat([a, a, a], 0)];
        })
      ));
    await t.step(
      "pad with a fill",
      () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (dev) => T.pad(on(dev, 3, [30, 40]), [[3, 4], [5, 6]], 7))
        ),
    );
    await t.step("contiguous copy of a transpose", () =>
      noLeaks(() =>
        splitMatches(
          d,
          4 * KiB,
          (dev) => T.reshape(T.transpose(on(dev, 4, [50, 4, 12]), [1, 0, 2]), [50 * 48]),
        )
      ));
  },
});

Deno.test({
  name: "webgpu: random draws split past the binding limit from the same counters",
  ignore: !gpu,
  fn: async (t) => {
    const d = gpu!;
    for (const mode of ["normal", "bits", "randint"] as const) {
      await t.step(mode, () =>
        noLeaks(() =>
          splitMatches(d, 4 * KiB, (device) => {
            const key = random.key(7, { device });
            if (mode === "bits") return random.bits(key, [3000]);
            if (mode === "randint") return random.randint(key, [50, 60], -5, 1000);
            return random.normal(key, [3000]);
          }, 1e-5)
        ));
    }
  },
});

Deno.test({
  name: "webgpu: kernels that cannot split refuse tensors past the binding limit",
  ignore: !gpu,
  fn: async () => {
    const d = gpu!;
    await noLeaks(() =>
      lowered(d, 4 * KiB, () =>
        T.scope(() => {
          const x = on("webgpu", 1, [40, 50]);
          refusesBinding(d, "cumsum", () => T.cumsum(x, 1));
          refusesBinding(d, "sort", () => T.sort(x));
          // Kernels that split, given layouts they cannot split.
          const row = on("webgpu", 2, [1, 2000]);
          refusesBinding(d, "argmax", () => T.argmax(row, 1));
          const perm = Int32Array.from({ length: 2000 }, (_, i) => 1999 - i);
          const idx = T.tensor(perm, { shape: [1, 2000], dtype: "i32", device: "webgpu" });
          refusesBinding(d, "gatherByIndex", () => T.gatherByIndex(row, idx));
          refusesBinding(d, "take", () => T.take(T.reshape(row, [2000]), T.arange(0, 10, 1)));
        }))
    );
    assert.equal(d.maxBindingBytes, d.device.limits.maxStorageBufferBindingSize);
  },
});

Deno.test({
  name: "webgpu: a dispatch binding a whole storage over the limit is refused",
  ignore: !gpu,
  fn: async () => {
    const d = gpu!;
    const x = d.alloc("f32", 2048);
    try {
      await lowered(d, 4 * KiB, () => {
        const code = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(1) fn main() { x[0] = 1.0; }`;
        assert.throws(
          () => d.run({ code, name: "probe" }, [x], [1]),
          /kernel probe would bind a tensor of 8192 bytes whole, over the limit of 4096/,
        );
      });
    } finally {
      d.free(x);
    }
  },
});

/** Elements of a tensor a little past the adapter's own binding limit, if buffers allow it. */
const pastAdapter = gpu &&
    gpu.maxBytes >= gpu.device.limits.maxStorageBufferBindingSize + 2 ** 25
  ? gpu.device.limits.maxStorageBufferBindingSize / 4 + 2 ** 22
  : 0;

Deno.test({
  name: "webgpu: a tensor past the adapter's binding limit fills, adds and sums",
  ignore: !pastAdapter,
  fn: () =>
    noLeaks(async () => {
      const n = pastAdapter;
      const [s, tail] = await T.scope(async () => {
        const x = T.add(T.full([n], 0.5, { device: "webgpu" }), 0.25);
        return [await T.sum(x).data(), await T.slice(x, [n - 3]).data()];
      });
      assert.deepEqual(Array.from(tail), [0.75, 0.75, 0.75]);
      assert.ok(Math.abs(s[0] - n * 0.75) <= 1e-6 * n, `sum ${s[0]}`);
    }),
});

Deno.test({
  name: "webgpu: the binding limit override is checked",
  ignore: !gpu,
  fn: () => {
    const d = gpu!;
    assert.throws(() => (d.maxBindingBytes = 100), RangeError);
    assert.throws(() => (d.maxBindingBytes = 2 ** 60), RangeError);
    assert.equal(d.maxBindingBytes, d.device.limits.maxStorageBufferBindingSize);
  },
});
