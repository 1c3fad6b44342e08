/**
 * A short showcase of the library on the default device: tensors, broadcasting, matmul,
 * reductions, sorting, random keys, gradients and memory accounting.
 *
 * Run: `deno run -A examples/demo.ts` (add `--cpu` to force the CPU backend). `deno task demo` runs
 * the main job, `examples/copy_task.ts`, instead.
 */
import {
  add,
  argsort,
  grad,
  init,
  matmul,
  mean,
  memory,
  mul,
  random,
  scope,
  softmax,
  square,
  sub,
  sum,
  tensor,
} from "../mod.ts";

if (Deno.args.includes("--help")) {
  console.log(
    "usage: deno run -A examples/demo.ts [--cpu]\nRuns a short showcase of the ops on the default device.",
  );
  Deno.exit(0);
}
const { backend, adapter } = await init({
  backend: Deno.args.includes("--cpu") ? "cpu" : undefined,
});
console.log(`device: ${backend} (${adapter})\n`);

await scope(async () => {
  const x = tensor([[1, 2, 3], [4, 5, 6]]);
  console.log("x =", await x.array());
  console.log("x + [10, 20, 30] =", await add(x, tensor([10, 20, 30])).array());
  console.log("x @ x^T =", await matmul(x, x, { transposeB: true }).array());
  console.log("softmax(x, -1) =", await softmax(x, -1).array());
  console.log("sum over axis 0 =", await sum(x, 0).array());

  const [k1, k2] = random.splitN(random.key(0), 2);
  const keys = random.uniform(k1, [8]);
  console.log("\nuniform(key 0) =", Array.from(await keys.data(), (v) => v.toFixed(3)).join(" "));
  console.log("argsort =", await argsort(keys).array());

  // Least squares by gradient descent: grad is a plain function of the params.
  const inputs = random.normal(k2, [64, 3]);
  const wTrue = tensor([[2], [-1], [0.5]]);
  const targets = matmul(inputs, wTrue);
  const loss = (w: typeof wTrue) => mean(square(sub(matmul(inputs, w), targets)));
  const step = grad(loss);
  let w = tensor([[0], [0], [0]]);
  for (let i = 0; i < 100; i++) {
    const next = scope(() => sub(w, mul(step(w), 0.1)));
    w.dispose();
    w = next;
  }
  console.log(
    "\nfitted w =",
    Array.from(await w.data(), (v) => v.toFixed(3)).join(" "),
    "(true: 2 -1 0.5)",
  );
});

const m = memory();
console.log(
  `\nafter scope: ${m.liveTensors} live tensors, ${m.liveBytes} live bytes, peak ${m.peakBytes} bytes`,
);
