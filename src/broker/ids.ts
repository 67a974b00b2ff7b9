import { randomFillSync } from 'node:crypto';

/**
 * Task ids are UUIDv7 (RFC 9562): a millisecond timestamp, then a counter
 * that keeps ids made in the same millisecond in order, then random bits.
 * Ids made one after the other sort together, so the store's id index grows
 * at its end instead of taking writes on random pages: the difference is
 * large at tens of thousands of inserts per second.
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;
let lastMs = 0;
let counter = 0;
const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function random(bytes: number): Buffer {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const slice = pool.subarray(poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return slice;
}

export function newTaskId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = random(2).readUInt16BE(0) & 0x3ff; // start low in the 12-bit space, leaving room to count
  } else {
    counter++;
    if (counter > 0xfff) {
      // More than ~3,000 ids in one millisecond: borrow the next one, keeping order.
      lastMs++;
      counter = 0;
    }
  }
  const b = Buffer.allocUnsafe(16);
  b.writeUIntBE(lastMs, 0, 6);
  b[6] = 0x70 | (counter >> 8);
  b[7] = counter & 0xff;
  random(8).copy(b, 8);
  b[8] = (b[8]! & 0x3f) | 0x80;
  let s = '';
  for (let i = 0; i < 16; i++) {
    s += hex[b[i]!];
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-';
  }
  return s;
}
