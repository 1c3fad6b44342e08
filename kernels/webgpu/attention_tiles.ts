/**
 * WGSL shared by the tiled attention kernels (`block_sparse_tiled.ts`,
 * `chunk_attention_tiled.ts`), which name their tiles and indices alike.
 * @module
 */

/**
 * End of a `dk`/`dv` kernel's sub-tile: stores this pair's probability `pr` and score
 * gradient `ds` in `Ps`/`Ds`, closes the score loop over `ii` and its `live` block, then (after
 * a barrier) adds `pr * dout` into `dv` and `ds * q` into `dk` (the per-thread head slices)
 * for every query `ii` of the tile.
 */
export function dkvAccumulate(dk: string, dv: string): string {
  return `
          Ps[a * B + ii] = pr;
          Ds[a * B + ii] = ds;
        }
      }
      workgroupBarrier();
      if (live) {
        for (var ii = 0u; ii < cnt; ii++) {
          let pr = Ps[a * B + ii];
          let ds = Ds[a * B + ii];
          for (var u = 0u; u < DPT; u++) {
            let d = lane + u * L;
            if (d < D) {
              ${dv}[u] += pr * Gs[ii * DS + d];
              ${dk}[u] += ds * Qs[ii * DS + d];
            }
          }
        }
      }`;
}
