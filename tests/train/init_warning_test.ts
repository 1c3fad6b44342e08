/**
 * Forgetting `await init()`: the first op that creates a tensor on the default device says once,
 * on stderr, that the CPU backend is in use; an explicit device or an `init` call says nothing.
 */
import assert from "node:assert/strict";

const MOD = new URL("../../mod.ts", import.meta.url).href;
const LINE = "longseq: init() was not called; running on the CPU reference. " +
  "Call `await init()` for WebGPU or the fast CPU backend.";

/** Runs `body` (after importing the package as `L`) in a fresh process; returns its output. */
async function runScript(
  body: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "init_warning_" });
  try {
    const path = `${dir}/script.ts`;
    await Deno.writeTextFile(path, `import * as L from "${MOD}";\n${body}\n`);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-check", path],
      env: { XDG_RUNTIME_DIR: "/tmp", NO_COLOR: "1", ...env },
    }).output();
    const dec = new TextDecoder();
    return { code, stdout: dec.decode(stdout), stderr: dec.decode(stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("init warning", async (t) => {
  await t.step("said once, on stderr, by the first tensor without init", async () => {
    const r = await runScript(`
      console.log(L.memory().liveTensors); // no tensor yet: no warning
      const a = L.tensor([1, 2]);
      const b = L.zeros([3]);
      const c = L.add(a, 1);
      console.log(a.device, (await c.data())[1]);
      for (const x of [a, b, c]) x.dispose();
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, LINE + "\n");
    assert.equal(r.stdout, "0\ncpu-reference 3\n");
  });
  await t.step("not said when the device is chosen explicitly", async () => {
    const r = await runScript(`
      const a = L.tensor([1, 2], { device: "cpu-reference" });
      const b = L.zeros([2], { device: "cpu-reference" });
      console.log((await L.add(a, b).data())[1]);
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "2\n");
  });
  await t.step("not said when LONGSEQ_BACKEND=cpu-reference chose the CPU", async () => {
    const r = await runScript(`console.log((await L.tensor([5]).data())[0]);`, {
      LONGSEQ_BACKEND: "cpu-reference",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "5\n");
  });
  await t.step("not said after init", async () => {
    const r = await runScript(`
      await L.init({ backend: "cpu-reference" });
      console.log((await L.tensor([4]).data())[0]);
    `);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "4\n");
  });
});
