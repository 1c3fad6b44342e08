/**
 * End-to-end runs of the training examples at a tiny size (a few steps each, on the CPU
 * backend): exit 0, the files next to each other in the out folder, resume equivalence,
 * a mismatched checkpoint rejected, and Ctrl-C saving a checkpoint.
 */
import assert from "node:assert/strict";
import { zipSync } from "fflate";
import { sampleToken } from "../../examples/generate.ts";
import { flagHelp, parseFlags, readMetrics, trainingFlags } from "../../train/mod.ts";

const ROOT = new URL("../../", import.meta.url);

interface Run {
  code: number;
  out: string;
}

/** Runs `examples/<name>.ts` with `args` and returns the exit code and stdout + stderr. */
async function run(name: string, args: string[], signalAfter?: string): Promise<Run> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `examples/${name}.ts`, ...args],
    cwd: ROOT,
    env: { XDG_RUNTIME_DIR: "/tmp", CI: "true", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const dec = new TextDecoder();
  let out = "";
  let sent = false;
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) {
      out += dec.decode(chunk);
      if (signalAfter && !sent && out.includes(signalAfter)) {
        sent = true;
        child.kill("SIGINT");
      }
    }
  };
  const [{ code }] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  return { code, out };
}

function assertOk(r: Run): void {
  assert.equal(r.code, 0, `exit ${r.code}; output:\n${r.out}`);
}

const TINY_COPY = [
  "--len=8",
  "--vocab=5",
  "--d-model=8",
  "--d-ff=8",
  "--heads=2",
  "--chunk-len=4",
  "--batch=2",
  "--eval-batches=1",
  "--eval-hashes=2,1",
  "--device=cpu",
];

Deno.test("parseFlags", async (t) => {
  const spec = {
    steps: { type: "int", default: 10, help: "steps" },
    lr: { type: "float", default: 0.1, help: "rate" },
    dModel: { type: "int", default: 4, help: "width" },
    kind: { type: "string", default: "a", choices: ["a", "b"], help: "kind" },
    resume: { type: "string", default: "", bare: "auto", help: "resume" },
    quiet: { type: "bool", default: false, help: "quiet" },
  } as const;
  await t.step("values, kebab and camel names, bare values", () => {
    const v = parseFlags("u", spec, [
      "--steps",
      "3",
      "--lr=1e-3",
      "--d-model=8",
      "--resume",
      "--quiet",
    ]);
    assert.deepEqual(v, { steps: 3, lr: 1e-3, dModel: 8, kind: "a", resume: "auto", quiet: true });
    assert.equal(parseFlags("u", spec, ["--dModel=6", "--kind=b"]).dModel, 6);
  });
  await t.step("errors name the flag", () => {
    assert.throws(() => parseFlags("u", spec, ["--steps=1.5"]), /--steps must be an integer/);
    assert.throws(() => parseFlags("u", spec, ["--kind=c"]), /--kind must be one of a, b/);
    assert.throws(() => parseFlags("u", spec, ["--nope"]), /unknown argument --nope/);
    assert.throws(() => parseFlags("u", spec, ["--lr"]), /--lr needs a value/);
    assert.throws(() => parseFlags("u", spec, ["--steps=1e30"]), /--steps must be an integer/);
  });
  await t.step("number flags are checked against their ranges", () => {
    const ranged = {
      ...trainingFlags({ steps: 5, batch: 2, lr: 1e-3, clip: false, out: "x", evalBatches: 2 }),
      rate: { type: "float", default: 0, min: 0, max: 1, help: "rate" },
    } as const;
    const bad: [string, RegExp][] = [
      ["--eval-batches=0", /--eval-batches must be >= 1, got 0/],
      ["--steps=-5", /--steps must be >= 1, got -5/],
      ["--batch=0", /--batch must be >= 1/],
      ["--lr=0", /--lr must be > 0, got 0/],
      ["--warmup=-1", /--warmup must be >= 0/],
      ["--rate=1.5", /--rate must be in 0\.\.1, got 1\.5/],
    ];
    for (const [arg, re] of bad) {
      assert.throws(() => parseFlags("u", ranged, [arg]), (e: Error & { usage?: boolean }) => {
        assert.match(e.message, re);
        assert.equal(e.usage, true);
        return true;
      });
    }
    assert.equal(parseFlags("u", ranged, ["--rate=1", "--eval-batches=1"]).rate, 1);
    assert.match(flagHelp("u", ranged), /--eval-batches=VALUE +.*\(>= 1\) \[default: 2\]/);
  });
});

Deno.test("copy_task", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "copy_task_" });
  try {
    await t.step("--help exits 0", async () => {
      const r = await run("copy_task", ["--help"]);
      assertOk(r);
      assert.match(r.out, /--n-hashes/);
    });
    await t.step("a bad flag exits 2 with a message", async () => {
      const r = await run("copy_task", ["--len=7"]);
      assert.equal(r.code, 2);
      assert.match(r.out, /--len must be even/);
      const zero = await run("copy_task", ["--eval-batches", "0"]);
      assert.equal(zero.code, 2, zero.out);
      assert.match(zero.out, /copy_task: --eval-batches must be >= 1, got 0/);
      const neg = await run("generate", ["--length", "-5"]);
      assert.equal(neg.code, 2, neg.out);
      assert.match(neg.out, /generate: --length must be >= 1, got -5/);
    });
    await t.step("trains, evaluates, writes files; the table has every column", async () => {
      const r = await run("copy_task", [...TINY_COPY, "--steps=4", `--out=${dir}/a`]);
      assertOk(r);
      assert.match(
        r.out,
        /\| trained \\ evaluated \| full \| full \(no self-mask\) \| LSH-2 \| LSH-1 \|/,
      );
      assert.match(r.out, /^trained 4 steps in \d+\.\d s \(\d+ tokens\/s\)/m);
      // Every file written is listed under "files:", and every file listed exists.
      const listed = /^files: (.*)$/m.exec(r.out)![1].split(", ");
      const names = listed.map((p) => p.slice(p.lastIndexOf("/") + 1)).sort();
      assert.deepEqual(
        names,
        [...await Array.fromAsync(Deno.readDir(`${dir}/a`))].map((e) => e.name).sort(),
      );
      assert.deepEqual(names, [
        "checkpoint.safetensors",
        "loss.svg",
        "metrics.jsonl",
        "results.json",
        "table.md",
      ]);
      for (const f of listed) assert.ok((await Deno.stat(f)).isFile, f);
      const steps = readMetrics(`${dir}/a/metrics.jsonl`).filter((m) => "loss" in m);
      assert.deepEqual(steps.map((m) => m.step), [1, 2, 3, 4]);
    });
    await t.step("resume reproduces the uninterrupted losses", async () => {
      assertOk(await run("copy_task", [...TINY_COPY, "--steps=2", `--out=${dir}/b`]));
      const r = await run("copy_task", [...TINY_COPY, "--steps=4", `--out=${dir}/b`, "--resume"]);
      assertOk(r);
      const losses = (p: string) =>
        readMetrics(p).filter((m) => "loss" in m).map((m) => [m.step, m.loss, m.acc]);
      assert.deepEqual(losses(`${dir}/b/metrics.jsonl`), losses(`${dir}/a/metrics.jsonl`));
      // This run's 2 steps and the total apart; time goes on from the first run's.
      assert.match(r.out, /^trained 2 steps in \d+\.\d s \(step 4 in all, \d+\.\d s\)/m);
      const time = readMetrics(`${dir}/b/metrics.jsonl`).filter((m) => "loss" in m)
        .map((m) => m.time as number);
      assert.equal(time.length, 4);
      for (let i = 1; i < 4; i++) assert.ok(time[i] >= time[i - 1], `time ${time}`);
      const results = JSON.parse(await Deno.readTextFile(`${dir}/b/results.json`));
      assert.equal(results.step, 4);
      assert.equal(results.stepsRun, 2);
      assert.ok(results.totalSeconds >= results.seconds);
    });
    await t.step("a mismatched checkpoint is rejected, nothing overwritten", async () => {
      const before = await Deno.readFile(`${dir}/b/checkpoint.safetensors`);
      const r = await run("copy_task", [
        ...TINY_COPY.filter((a) => !a.startsWith("--d-model")),
        "--d-model=12",
        "--steps=6",
        `--out=${dir}/b`,
        "--resume",
      ]);
      assert.notEqual(r.code, 0);
      assert.match(r.out, /expected f32\[\d+(,\d+)*\], found f32\[\d+(,\d+)*\]/);
      assert.deepEqual(await Deno.readFile(`${dir}/b/checkpoint.safetensors`), before);
    });
    await t.step("a truncated checkpoint is rejected with a message", async () => {
      const bytes = await Deno.readFile(`${dir}/b/checkpoint.safetensors`);
      await Deno.mkdir(`${dir}/d`);
      await Deno.writeFile(`${dir}/d/checkpoint.safetensors`, bytes.subarray(0, bytes.length - 9));
      const r = await run("copy_task", [...TINY_COPY, "--steps=6", `--out=${dir}/d`, "--resume"]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /copy_task: loadCheckpoint: .*checkpoint\.safetensors/);
      assert.equal((await Deno.stat(`${dir}/d/checkpoint.safetensors`)).size, bytes.length - 9);
    });
    await t.step("--table trains every row and prints the 5x6 grid", async () => {
      const args = [...TINY_COPY, "--eval-hashes=8,4,2,1", "--steps=2", "--table"];
      const r = await run("copy_task", [...args, `--out=${dir}/t`]);
      assertOk(r);
      const rows = ["full", "LSH-8", "LSH-4", "LSH-2", "LSH-1"];
      const cols = ["full", "full (no self-mask)", "LSH-8", "LSH-4", "LSH-2", "LSH-1"];
      const grid = r.out.slice(
        r.out.indexOf("This run:"),
        r.out.indexOf("Reformer paper, Table 2"),
      );
      const lines = grid.split("\n").filter((l) => l.startsWith("| "));
      assert.deepEqual(lines[0].split("|").slice(2, -1).map((c) => c.trim()), cols);
      assert.deepEqual(lines.slice(1).map((l) => l.split("|")[1].trim()), rows);
      for (const l of lines.slice(1)) {
        for (const c of l.split("|").slice(2, -1)) assert.match(c.trim(), /^\d+\.\d$/, l);
      }
      assert.match(r.out, /no self-mask/);
      assert.match(r.out, /^table: 5 rows in \d+\.\d s wall/m);
      const res = JSON.parse(await Deno.readTextFile(`${dir}/t/results.json`));
      assert.deepEqual(res.rows, rows);
      assert.deepEqual(res.columns, cols);
      assert.equal(res.accs.length, 5);
      for (const a of res.accs) {
        assert.equal(a.length, 6);
        for (const v of a) assert.ok(v >= 0 && v <= 1, `${v}`);
      }
      assert.deepEqual(res.steps, [2, 2, 2, 2, 2]);
      for (const row of ["full", "lsh-8", "lsh-4", "lsh-2", "lsh-1"]) {
        assert.ok((await Deno.stat(`${dir}/t/${row}/checkpoint.safetensors`)).isFile, row);
      }
      // Resumed: finished rows are read back, not trained again, and give the same grid.
      const again = await run("copy_task", [...args, `--out=${dir}/t`, "--resume"]);
      assertOk(again);
      assert.equal((again.out.match(/read back from/g) ?? []).length, 5);
      const res2 = JSON.parse(await Deno.readTextFile(`${dir}/t/results.json`));
      assert.deepEqual(res2.accs, res.accs);
    });
    await t.step("Ctrl-C saves a checkpoint", async () => {
      const r = await run(
        "copy_task",
        [...TINY_COPY, "--steps=100000", "--checkpoint-every=0", `--out=${dir}/c`],
        "copy ",
      );
      assert.equal(r.code, 130, r.out);
      assert.match(r.out, /interrupted; checkpoint: .*\(step \d+\)/);
      assert.ok((await Deno.stat(`${dir}/c/checkpoint.safetensors`)).isFile);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const TINY_LM = [
  "--len=16",
  "--d-model=8",
  "--d-ff=8",
  "--heads=2",
  "--layers=1",
  "--chunk-len=4",
  "--batch=2",
  "--eval-batches=1",
  "--device=cpu",
];

Deno.test("char_lm and generate", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "char_lm_" });
  try {
    const text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
    await Deno.writeFile(`${dir}/enwik8.zip`, zipSync({ enwik8: new TextEncoder().encode(text) }));
    await t.step("--help exits 0", async () => {
      const r = await run("char_lm", ["--help"]);
      assertOk(r);
      assert.match(r.out, /--data/);
    });
    await t.step("trains on an enwik8-style zip and reports bits per byte", async () => {
      const r = await run("char_lm", [
        ...TINY_LM,
        `--data=${dir}/enwik8.zip`,
        "--steps=3",
        `--out=${dir}/lm`,
      ]);
      assertOk(r);
      assert.match(r.out, /validation \d+\.\d+ bits\/byte/);
      assert.match(r.out, /^3 steps in \d+\.\d s, \d+ tokens\/s, peak memory/m);
      assert.match(r.out, /^files: .*checkpoint\.safetensors, .*, .*results\.json$/m);
      for (const f of ["checkpoint.safetensors", "metrics.jsonl", "loss.svg", "results.json"]) {
        assert.ok((await Deno.stat(`${dir}/lm/${f}`)).isFile, f);
      }
    });
    await t.step("generate samples text from the checkpoint", async () => {
      const r = await run("generate", [
        `--checkpoint=${dir}/lm/checkpoint.safetensors`,
        "--prompt=the ",
        "--length=5",
        "--device=cpu",
      ]);
      assertOk(r);
      assert.match(r.out, /^the /m);
      assert.match(r.out, /5 tokens in/);
    });
    await t.step("generate rejects a missing checkpoint with a message", async () => {
      const r = await run("generate", [`--checkpoint=${dir}/nope.safetensors`, "--device=cpu"]);
      assert.equal(r.code, 1);
      assert.match(r.out, /generate: loadCheckpoint: cannot read/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("generate from a copy_task checkpoint with token ids", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gen_copy_" });
  try {
    assertOk(await run("copy_task", [...TINY_COPY, "--steps=1", `--out=${dir}`]));
    const r = await run("generate", [
      `--checkpoint=${dir}/checkpoint.safetensors`,
      "--tokens=0,1,2,3,0",
      "--length=3",
      "--temperature=0",
      "--device=cpu",
    ]);
    assertOk(r);
    assert.match(r.out, /^ 0 1 2 3 0( \d){3}/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sampleToken: greedy, top-k and temperature", () => {
  const logits = [0, 5, 1, 4];
  assert.equal(sampleToken(logits, 0, 0, () => 0.5), 1);
  assert.equal(sampleToken(logits, 1, 1, () => 0.99), 1);
  const seen = new Set<number>();
  for (let i = 0; i < 50; i++) seen.add(sampleToken(logits, 1, 2, () => i / 50));
  assert.deepEqual([...seen].sort(), [1, 3]);
});

Deno.test("mnist_sparse", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "mnist_" });
  try {
    await t.step("--help exits 0", async () => assertOk(await run("mnist_sparse", ["--help"])));
    await t.step("trains on two pixel rows, reports bits/dim, writes samples", async () => {
      const r = await run("mnist_sparse", [
        "--pixels=56",
        "--d-model=8",
        "--d-ff=8",
        "--heads=2",
        "--batch=2",
        "--steps=2",
        "--eval-batches=1",
        "--samples=2",
        "--device=cpu",
        `--out=${dir}`,
      ]);
      assertOk(r);
      assert.match(r.out, /test \d+\.\d+ bits\/dim/);
      for (const f of ["checkpoint.safetensors", "metrics.jsonl", "loss.svg", "samples.png"]) {
        assert.ok((await Deno.stat(`${dir}/${f}`)).isFile, f);
      }
      const png = await Deno.readFile(`${dir}/samples.png`);
      assert.deepEqual([...png.subarray(1, 4)], [80, 78, 71]); // "PNG"
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
