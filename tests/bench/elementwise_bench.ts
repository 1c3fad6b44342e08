/**
 * Elementwise throughput on the default device. Bytes moved per iteration are in each name;
 * GB/s = bytes / time. `deno task bench` runs it; `tests/bench/table.ts` prints GB/s directly.
 */
import { add, exp, init, mul, scope, sync, zeros } from "../../mod.ts";

const { backend, adapter } = await init({ quiet: true });
const software = /llvmpipe|software|cpu/i.test(adapter) || backend === "cpu-reference";
const sizes = software ? [1 << 16, 1 << 20] : [1 << 20, 1 << 24];

for (const n of sizes) {
  const a = zeros([n]), b = zeros([n]), row = zeros([256]);
  Deno.bench(`add f32[${n}] (${(12 * n / 1e6).toFixed(1)} MB moved) on ${backend}`, {
    group: `add ${n}`,
  }, async () => {
    scope(() => void add(a, b));
    await sync();
  });
  Deno.bench(`exp f32[${n}] (${(8 * n / 1e6).toFixed(1)} MB moved) on ${backend}`, {
    group: `exp ${n}`,
  }, async () => {
    scope(() => void exp(a));
    await sync();
  });
  Deno.bench(`broadcast mul f32[${n / 256},256]*f32[256] on ${backend}`, {
    group: `mul ${n}`,
  }, async () => {
    scope(() => void mul(a.view([n / 256, 256]), row));
    await sync();
  });
}
