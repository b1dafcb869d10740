import { createHash } from 'node:crypto';

/** 2^14 registers: standard error 1.04/√16384 ≈ 0.81%, 16 KiB a sketch. */
export const HLL_P = 14;
export const HLL_M = 1 << HLL_P;
export const HLL_STANDARD_ERROR = 1.04 / Math.sqrt(HLL_M);

/**
 * A HyperLogLog sketch (Flajolet et al. 2007) of distinct strings, on a 64-bit hash (the first 8 bytes of
 * SHA-1: no collisions worth counting below billions, so no large-range correction). Registers are one byte
 * each; two sketches merge by taking each register's maximum, which is the sketch of the union.
 */
export class HyperLogLog {
  readonly registers: Uint8Array;

  constructor(registers?: Uint8Array) {
    if (registers && registers.length !== HLL_M) throw new Error(`a sketch has ${HLL_M} registers, got ${registers.length}`);
    this.registers = registers ? new Uint8Array(registers) : new Uint8Array(HLL_M);
  }

  add(value: string): void {
    const h = createHash('sha1').update(value).digest();
    const hi = h.readUInt32BE(0);
    const lo = h.readUInt32BE(4);
    const index = hi >>> (32 - HLL_P);
    // The rank of the other 50 bits: the position of their first 1 (51 when all are 0).
    const rest = hi & ((1 << (32 - HLL_P)) - 1);
    const rank = rest !== 0 ? Math.clz32(rest) - HLL_P + 1 : lo !== 0 ? 32 - HLL_P + Math.clz32(lo) + 1 : 64 - HLL_P + 1;
    if (rank > this.registers[index]!) this.registers[index] = rank;
  }

  merge(other: HyperLogLog): void {
    const r = this.registers;
    const o = other.registers;
    for (let i = 0; i < HLL_M; i++) if (o[i]! > r[i]!) r[i] = o[i]!;
  }

  /** The estimated count; linear counting while many registers are empty (small sets: near exact). */
  estimate(): number {
    let sum = 0;
    let zeros = 0;
    for (let i = 0; i < HLL_M; i++) {
      const v = this.registers[i]!;
      sum += 2 ** -v;
      if (v === 0) zeros++;
    }
    const alpha = 0.7213 / (1 + 1.079 / HLL_M);
    const raw = (alpha * HLL_M * HLL_M) / sum;
    if (raw <= 2.5 * HLL_M && zeros > 0) return Math.round(HLL_M * Math.log(HLL_M / zeros));
    return Math.round(raw);
  }

  isEmpty(): boolean {
    return this.registers.every((v) => v === 0);
  }
}
