/**
 * Loading files that may have been tampered with or written by other tools: restored leaves
 * checked against the template, BOOL bytes, the header length read before anything else,
 * validation of the `longseq.tree` description, cyclic trees, stale temporary files, and the
 * F16 / BF16 / F64 casts.
 */
import assert from "node:assert/strict";
import * as T from "../../mod.ts";
import { decodeSafetensors, encodeSafetensors } from "../../io/safetensors.ts";
import {
  loadCheckpoint,
  saveCheckpoint,
  STALE_TEMP_MS,
  TREE_METADATA_KEY,
} from "../../io/checkpoint.ts";
import { noLeaks } from "../util.ts";

const dispose = (tree: unknown) => T.treeTensors(tree).forEach((x) => x.dispose());
const leaf = { kind: "leaf" };
const W = { dtype: "f32", shape: [2], data: new Float32Array([1, 2]) } as const;

/** A file holding tensor `w` and the given `longseq.tree` text. */
function withTree(tree: unknown): Uint8Array {
  const text = typeof tree === "string" ? tree : JSON.stringify(tree);
  return encodeSafetensors({ w: W }, { [TREE_METADATA_KEY]: text });
}

/** The tree entry of `{ w: tensor, step: <stored> }`. */
const stepTree = (stored: unknown) => ({
  def: { kind: "object", keys: ["w", "step"], children: [leaf, leaf] },
  leaves: [{ tensor: "w" }, stored],
});

Deno.test("untrusted checkpoint files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "untrusted_test_" });
  const path = `${dir}/bad.safetensors`;
  const like = () => ({ w: T.zeros([2]), step: 0 });
  const loadLike = async (file: string) => {
    const template = like();
    try {
      const { tree } = await loadCheckpoint(file, { like: template, device: "cpu-reference" });
      dispose(tree);
      return tree;
    } finally {
      dispose(template);
    }
  };

  await t.step("restored leaves are checked against the template", () =>
    noLeaks(async () => {
      const cases: [unknown, RegExp][] = [
        [{ value: "abc" }, /leaf step: expected a number .* found the string "abc"/],
        [{ number: "NaN" }, /leaf step: expected a finite number, found NaN/],
        [{ value: -5 }, /leaf step: expected a non-negative number, found -5/],
        [{ value: 2.5 }, /leaf step: expected a safe integer .* found 2\.5/],
        [{ value: 2 ** 60 }, /leaf step: expected a safe integer/],
        [{ value: true }, /leaf step: expected a number .* found boolean true/],
      ];
      for (const [stored, re] of cases) {
        Deno.writeFileSync(path, withTree(stepTree(stored)));
        await assert.rejects(() => loadLike(path), (e: Error) => {
          assert.match(e.message, /loadCheckpoint: .*bad\.safetensors does not match/);
          assert.match(e.message, re);
          return true;
        });
      }
      // {x: 1} where the template has a number.
      Deno.writeFileSync(
        path,
        withTree({
          def: { kind: "object", keys: ["w", "step"], children: [leaf, { ...stepTree(0).def }] },
          leaves: [{ tensor: "w" }, { value: 1 }, { value: 1 }],
        }),
      );
      await assert.rejects(() => loadLike(path), /leaf step: the file holds a container there/);
      Deno.writeFileSync(path, withTree(stepTree({ value: 7 })));
      assert.equal((await loadLike(path)).step, 7);
    }));

  await t.step("BOOL bytes other than 0 and 1 are rejected", () =>
    noLeaks(async () => {
      const bytes = encodeSafetensors({
        w: W,
        m: { dtype: "bool", shape: [3], data: new Uint8Array([1, 0, 1]) },
      });
      bytes[bytes.length - 2] = 2; // element 1 of m, the last tensor
      const re = /BOOL tensor "m" has byte 0x02 at element 1 \(file offset \d+\)/;
      assert.throws(() => decodeSafetensors(bytes), re);
      Deno.writeFileSync(path, bytes);
      await assert.rejects(() => loadCheckpoint(path, { device: "cpu-reference" }), (e: Error) => {
        assert.match(e.message, re);
        assert.match(e.message, /bad\.safetensors/);
        assert.match(e.message, new RegExp(`file offset ${bytes.length - 2}\\)`));
        return true;
      });
    }));

  await t.step("a bad header length is caught before the file is read", async () => {
    const big = `${dir}/sparse.safetensors`;
    const size = 2 * 2 ** 30;
    const write = (header: Uint8Array) => {
      Deno.writeFileSync(big, header);
      Deno.truncateSync(big, size); // sparse: no disk used
    };
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, 2n ** 60n, true);
    write(prefix);
    const rss0 = Deno.memoryUsage().rss;
    await assert.rejects(
      () => loadCheckpoint(big),
      /sparse\.safetensors: header length 1152921504606846976 does not fit in 2147483648 bytes/,
    );
    // A valid header for a 2 GiB tensor: the template mismatch is found from the header alone.
    const n = (size - 8 - 80) / 4;
    const json = JSON.stringify({ w: { dtype: "F32", shape: [n], data_offsets: [0, n * 4] } });
    const header = new Uint8Array(88).fill(0x20);
    new DataView(header.buffer).setBigUint64(0, 80n, true);
    header.set(new TextEncoder().encode(json), 8);
    write(header);
    await assert.rejects(
      () => loadLike(big),
      /tensor "w": expected f32\[2\], found f32\[536870890\]/,
    );
    const grew = Deno.memoryUsage().rss - rss0;
    assert.ok(grew < 256 * 2 ** 20, `RSS grew by ${grew} bytes`);
    Deno.removeSync(big);
  });

  await t.step(
    "a tampered tree description names the file and the path",
    () =>
      noLeaks(async () => {
        let deep: unknown = leaf;
        for (let i = 0; i < 20_000; i++) deep = { kind: "array", children: [deep] };
        const cases: [unknown, RegExp][] = [
          [{ def: leaf, leaves: "nope" }, /leaves is not an array/],
          [
            { def: { kind: "set", children: [] }, leaves: [] },
            /def at the root has unknown kind "set"/,
          ],
          [
            { def: { kind: "object", keys: ["a"], children: [{ kind: 3 }] }, leaves: [] },
            /def at a has unknown kind 3/,
          ],
          [{ def: deep, leaves: [{ tensor: "w" }] }, /def at (0\.)+0?… is nested deeper than 256/],
          [{ def: leaf, leaves: [{ tensor: "w" }, { value: 1 }] }, /leaves has 2 entries/],
          [{ def: leaf, leaves: [{ bogus: 1 }] }, /leaf root: unknown field "bogus"/],
          [
            {
              def: { kind: "object", keys: ["__proto__"], children: [leaf] },
              leaves: [{ value: 1 }],
            },
            /def at the root: key "__proto__" cannot be restored/,
          ],
          ["[1,", /is not valid JSON/],
        ];
        for (const [tree, re] of cases) {
          Deno.writeFileSync(path, withTree(tree));
          await assert.rejects(() => loadCheckpoint(path), (e: Error) => {
            assert.ok(e instanceof RangeError, String(e));
            assert.match(e.message, /bad\.safetensors does not match:\n {2}metadata longseq\.tree/);
            assert.match(e.message, re);
            return true;
          });
        }
        // No tree entry: a name of 50,000 dotted parts would nest 50,000 levels.
        const name = Array(50_000).fill("a").join(".");
        Deno.writeFileSync(path, encodeSafetensors({ [name]: W }));
        await assert.rejects(() => loadCheckpoint(path), /has 50000 dotted parts; at most 256/);
      }),
  );

  await t.step("a cyclic tree is refused by saveCheckpoint", () =>
    noLeaks(async () => {
      const a: Record<string, unknown> = { n: 1 };
      const tree = { params: { list: [a] } };
      a.self = tree.params;
      await assert.rejects(
        () => saveCheckpoint(`${dir}/cyclic.safetensors`, tree),
        (e: Error) =>
          e instanceof TypeError &&
          /saveCheckpoint: the tree is cyclic: params\.list\.0\.self is its own ancestor params/
            .test(e.message),
      );
      const shared = { n: 1 };
      await saveCheckpoint(`${dir}/shared.safetensors`, { a: shared, b: shared }); // no cycle
      Deno.removeSync(`${dir}/shared.safetensors`);
    }));

  await t.step("stale temporary files of the checkpoint are removed", () =>
    noLeaks(async () => {
      const sub = `${dir}/temps`;
      Deno.mkdirSync(sub);
      const ckpt = `${sub}/ckpt.safetensors`;
      const old = new Date(Date.now() - STALE_TEMP_MS - 5_000);
      const make = (name: string, stale: boolean) => {
        Deno.writeFileSync(`${sub}/${name}`, new Uint8Array(3));
        if (stale) Deno.utimeSync(`${sub}/${name}`, old, old);
      };
      const setup = () => {
        make("ckpt.safetensors.tmp-0123abcd", true); // a killed save's: removed
        make("ckpt.safetensors.tmp-89abcdef", false); // too recent: maybe a live save
        make("ckpt.safetensors.tmp-notours1", true); // not the pattern
        make("other.safetensors.tmp-0123abcd", true); // another checkpoint's
      };
      const kept = [
        "ckpt.safetensors.tmp-89abcdef",
        "ckpt.safetensors.tmp-notours1",
        "other.safetensors.tmp-0123abcd",
      ];
      setup();
      await saveCheckpoint(ckpt, { step: 1 });
      const list = () => [...Deno.readDirSync(sub)].map((e) => e.name).sort();
      assert.deepEqual(list(), ["ckpt.safetensors", ...kept].sort());
      setup();
      await loadCheckpoint(ckpt);
      assert.deepEqual(list(), ["ckpt.safetensors", ...kept].sort());
      Deno.removeSync(sub, { recursive: true });
    }));

  await Deno.remove(dir, { recursive: true });
});
