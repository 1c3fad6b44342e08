import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { random } from "../../mod.ts";
import { getDevice } from "../../ops/device.ts";
import { noLeaks, testDevices } from "../util.ts";

/** Asserts `f` throws a RangeError naming `op`, the shape and the device's limit, quickly. */
function huge(op: string, shape: string, device: T.DeviceName, f: () => unknown) {
  const t0 = performance.now();
  assert.throws(f, (e: Error) => {
    assert.ok(e instanceof RangeError, `${op}: ${e}`);
    assert.ok(e.message.startsWith(`${op}: `), e.message);
    assert.ok(e.message.includes(shape), e.message);
    assert.ok(
      e.message.includes(`${device} limit of ${getDevice(device).maxBytes} bytes`),
      e.message,
    );
    return true;
  });
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `${op} took ${ms} ms to refuse`);
}

Deno.test("creations and ops refuse outputs over the device limit before allocating", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(() => {
          const before = T.memory(device).peakBytes;
          huge("full", "[2147483648]", device, () => T.zeros([2 ** 31], { device }));
          huge("full", "[65536,65536]", device, () => T.zeros([65536, 65536], { device }));
          huge("full", "[65536,65536]", device, () => T.ones([65536, 65536], { device }));
          huge("full", "[65536,65536]", device, () => T.full([65536, 65536], 3, { device }));
          const col = T.zeros([65536, 1], { device });
          const row = T.zeros([1, 65536], { device });
          huge("add", "[65536,65536]", device, () => T.add(col, row));
          huge("greater", "[65536,65536]", device, () => T.greater(col, row));
          huge("where", "[65536,65536]", device, () => T.where(T.greater(col, 0), col, row));
          huge("matmul", "[65536,65536]", device, () => T.matmul(col, row));
          huge("broadcastTo", "[65536,65536]", device, () => T.broadcastTo(col, [65536, 65536]));
          huge("eye", "[65536,65536]", device, () => T.eye(65536, 65536, 0, { device }));
          huge("arange", "[2147483648]", device, () => T.arange(2 ** 31, undefined, 1, { device }));
          huge("embed", "[65536,65537]", device, () => T.pad(col, [[0, 0], [0, 65536]]));
          const piece = T.zeros([1, 2 ** 22], { device });
          huge("concat", "[160,4194304]", device, () => T.concat(Array(160).fill(piece), 0));
          huge(
            "oneHot",
            "[65536,65536]",
            device,
            () => T.oneHot(T.zeros([65536], { device, dtype: "i32" }), 65536),
          );
          huge(
            "random.normal",
            "[65536,65536]",
            device,
            () => random.normal(random.key(0, { device }), [65536, 65536]),
          );
          assert.ok(T.memory(device).peakBytes - before < 2 ** 28, "nothing huge was allocated");
        })
      ));
  }
});
