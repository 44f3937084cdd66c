// HMAC-SHA256 (RFC 2104, FIPS 180-4), synchronous and runtime-neutral, for signing backplane
// envelopes. Web Crypto's `subtle.sign` is async: signing there would put a promise between
// an emit and its publish, and publishes on one channel must stay in emit order.
import { toBase64 } from "./_base64.ts";

const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);
const INIT = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);
// Int32 throughout: uint32 reads above 2^31 would leave V8's small-integer fast path.
const W = new Int32Array(64);

/** Process 64-byte blocks of `data` from `offset` into `h`. */
function blocks(h: Int32Array, data: Uint8Array, offset: number, end: number): void {
  for (let p = offset; p + 64 <= end; p += 64) {
    for (let i = 0; i < 16; i++) {
      const j = p + i * 4;
      W[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15], b = W[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0;
    h[1] = (h[1] + b) | 0;
    h[2] = (h[2] + c) | 0;
    h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0;
    h[5] = (h[5] + f) | 0;
    h[6] = (h[6] + g) | 0;
    h[7] = (h[7] + k) | 0;
  }
}

/**
 * SHA-256 of `data`, continuing from state `start` after `done` bytes (0, or 64 for the
 * keyed HMAC states).
 */
function sha256(data: Uint8Array, start: Int32Array = INIT, done = 0): Uint8Array {
  const h = new Int32Array(start);
  const full = data.length - (data.length % 64);
  blocks(h, data, 0, full);
  const rest = data.length - full;
  const tail = new Uint8Array(rest + 9 <= 64 ? 64 : 128);
  tail.set(data.subarray(full));
  tail[rest] = 0x80;
  const bits = (done + data.length) * 8;
  const v = new DataView(tail.buffer);
  v.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
  v.setUint32(tail.length - 4, bits >>> 0);
  blocks(h, tail, 0, tail.length);
  const out = new Uint8Array(32);
  const o = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) o.setInt32(i * 4, h[i]);
  return out;
}

const encoder = new TextEncoder();

/** An HMAC-SHA256 signer for one key. */
export class Hmac {
  /** The SHA-256 states after the key block xor ipad / opad (computed once per key). */
  readonly #inner = new Int32Array(INIT);
  readonly #outer = new Int32Array(INIT);

  /** @param key The shared secret (a string is taken as UTF-8). */
  constructor(key: string | Uint8Array) {
    let k = typeof key === "string" ? encoder.encode(key) : key;
    if (k.length > 64) k = sha256(k);
    const ipad = new Uint8Array(64);
    const opad = new Uint8Array(64);
    for (let i = 0; i < 64; i++) {
      const b = i < k.length ? k[i] : 0;
      ipad[i] = b ^ 0x36;
      opad[i] = b ^ 0x5c;
    }
    blocks(this.#inner, ipad, 0, 64);
    blocks(this.#outer, opad, 0, 64);
  }

  /** The 32-byte MAC of `message` (a string is taken as UTF-8). */
  sign(message: string | Uint8Array): Uint8Array {
    const m = typeof message === "string" ? encoder.encode(message) : message;
    return sha256(sha256(m, this.#inner, 64), this.#outer, 64);
  }

  /** The MAC of `message`, as unpadded base64url (43 characters). */
  signText(message: string): string {
    return toBase64(this.sign(message)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  /** Whether `mac` (from {@linkcode Hmac.signText}) is `message`'s, compared in constant time. */
  verifyText(message: string, mac: string): boolean {
    const expected = this.signText(message);
    if (mac.length !== expected.length) return false;
    let diff = 0;
    for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ mac.charCodeAt(i);
    return diff === 0;
  }
}
