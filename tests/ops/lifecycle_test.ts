import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { noLeaks, testDevices } from "../util.ts";

Deno.test("ops on a disposed tensor name the op and the input", async (t) => {
  for (const device of testDevices()) {
    await t.step(device, () =>
      noLeaks(() =>
        T.scope(() => {
          const a = T.ones([2, 3], { device });
          const d = T.ones([2, 3], { device });
          d.dispose();
          const cases: [string, () => unknown][] = [
            ["add: input 1 (tensor [2,3] f32) was disposed", () => T.add(a, d)],
            ["add: input 0 (tensor [2,3] f32) was disposed", () => T.add(d, a)],
            ["mul: input 0 (tensor [2,3] f32) was disposed", () => T.mul(d, 2)],
            ["sub: input 1 (tensor [2,3] f32) was disposed", () => T.sub(1, d)],
            ["exp: input 0 (tensor [2,3] f32) was disposed", () => T.exp(d)],
            ["sum: input 0 (tensor [2,3] f32) was disposed", () => T.sum(d, 1)],
            ["reshape: input 0 (tensor [2,3] f32) was disposed", () => T.reshape(d, [6])],
            [
              "where: input 1 (tensor [2,3] f32) was disposed",
              () => T.where(T.greater(a, 0), d, a),
            ],
            [
              "matmul: input 1 (tensor [2,3] f32) was disposed",
              () => T.matmul(T.ones([3, 2], { device }), d),
            ],
          ];
          for (const [msg, f] of cases) {
            assert.throws(
              f,
              (e: Error) => e instanceof TypeError && e.message.startsWith(msg),
              msg,
            );
          }
        })
      ));
  }
});

/** Runs `code` (a module importing the library as `T` without calling init) in a new process. */
async function runFresh(code: string): Promise<string> {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, `import * as T from "${mod}";\n${code}`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", file],
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return text.trim();
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("concurrent init calls share one WebGPU device", async () => {
  const out = await runFresh(`
import { getDevice } from "${new URL("../../ops/device.ts", import.meta.url).href}";
import { deviceOf } from "${new URL("../../ops/tensor.ts", import.meta.url).href}";
const p1 = T.init({ quiet: true });
const p2 = T.init({ quiet: true });
let clash = "none";
try { await T.init({ backend: "cpu-reference" }); } catch (e) { clash = (e as Error).message; }
const r1 = await p1;
const made = T.ones([2]); // made between the two calls' completions
const r2 = await p2;
const r3 = await T.init({ quiet: true });
const same = deviceOf(made) === getDevice(r1.backend) && deviceOf(made) === getDevice();
console.log(JSON.stringify({ b: [r1.backend, r2.backend, r3.backend], same, clash,
  sum: await T.sum(T.add(made, 1)).data().then((d) => d[0]) }));
`);
  const r = JSON.parse(out);
  assert.equal(r.b[0], r.b[1]);
  assert.equal(r.b[0], r.b[2]);
  assert.equal(r.same, true);
  assert.equal(r.sum, 4);
  assert.match(
    r.clash,
    /init: called with backend "cpu-reference" while a call with backend "auto"/,
  );
});

Deno.test("init after init keeps the WebGPU device and may switch the default", async () => {
  const out = await runFresh(`
import { getDevice } from "${new URL("../../ops/device.ts", import.meta.url).href}";
const a = await T.init({ quiet: true });
const first = T.devices().includes("webgpu") ? getDevice("webgpu") : null;
const c = await T.init({ backend: "cpu-reference" });
const cpuDefault = T.ones([1]).device;
await T.init({ quiet: true });
const again = T.devices().includes("webgpu") ? getDevice("webgpu") : null;
console.log(JSON.stringify({ a: a.backend, c: c.backend, cpuDefault, same: first === again }));
`);
  const r = JSON.parse(out);
  assert.equal(r.c, "cpu-reference");
  assert.equal(r.cpuDefault, "cpu-reference");
  assert.equal(r.same, true);
});
