// HMAC-SHA256 (RFC 2104, FIPS 180-4), synchronous and runtime-neutral, for signing backplane
// envelopes. Web Crypto's `subtle.sign` is async: signing there would put a promise between
// an emit and its publish, and publishes on one channel must stay in emit order.

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

/** Run the compression function on `W[0..15]` (the message schedule's first 16 words) into `h`. */
function compress(h: Int32Array): void {
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (let i = 0; i < 64; i++) {
    let w: number;
    if (i < 16) w = W[i];
    else {
      const x = W[i - 15], y = W[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w = W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + w) | 0;
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

/** Process the 64-byte blocks of `data[0..end)` into `h`. */
function blocks(h: Int32Array, data: Uint8Array, end: number): void {
  for (let p = 0; p + 64 <= end; p += 64) {
    for (let i = 0; i < 16; i++) {
      const j = p + i * 4;
      W[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
    }
    compress(h);
  }
}

/**
 * Hash `data[0..length)` into `h` (a state after `done` bytes: 0, or 64 for the keyed HMAC
 * states), padding included. `data` must have room for the padding (`length + 72` bytes).
 */
function finish(h: Int32Array, data: Uint8Array, length: number, done: number): void {
  const full = length - (length % 64);
  blocks(h, data, full);
  const rest = length - full;
  const end = full + (rest + 9 <= 64 ? 64 : 128);
  data[length] = 0x80;
  data.fill(0, length + 1, end);
  const bits = (done + length) * 8;
  const hi = Math.floor(bits / 0x100000000), lo = bits >>> 0;
  data[end - 8] = hi >>> 24;
  data[end - 7] = hi >>> 16;
  data[end - 6] = hi >>> 8;
  data[end - 5] = hi;
  data[end - 4] = lo >>> 24;
  data[end - 3] = lo >>> 16;
  data[end - 2] = lo >>> 8;
  data[end - 1] = lo;
  for (let p = full; p < end; p += 64) {
    for (let i = 0; i < 16; i++) {
      const j = p + i * 4;
      W[i] = (data[j] << 24) | (data[j + 1] << 16) | (data[j + 2] << 8) | data[j + 3];
    }
    compress(h);
  }
}

/** SHA-256 of `bytes` (keys longer than a block). */
function sha256(bytes: Uint8Array): Uint8Array {
  const h = new Int32Array(INIT);
  const data = new Uint8Array(bytes.length + 72);
  data.set(bytes);
  finish(h, data, bytes.length, 0);
  return wordsToBytes(h);
}

function wordsToBytes(h: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    out[i * 4] = h[i] >>> 24;
    out[i * 4 + 1] = h[i] >>> 16;
    out[i * 4 + 2] = h[i] >>> 8;
    out[i * 4 + 3] = h[i];
  }
  return out;
}

/**
 * UTF-8 of `s` into `buf` from 0, as TextEncoder would (a lone surrogate as U+FFFD); returns
 * the length. `buf` must hold 3 bytes per UTF-16 unit of `s`.
 */
function utf8Into(s: string, buf: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[n++] = c;
    } else if (c < 0x800) {
      buf[n++] = 0xc0 | (c >> 6);
      buf[n++] = 0x80 | (c & 63);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          buf[n++] = 0xf0 | (c >> 18);
          buf[n++] = 0x80 | ((c >> 12) & 63);
          buf[n++] = 0x80 | ((c >> 6) & 63);
          buf[n++] = 0x80 | (c & 63);
          continue;
        }
        c = 0xfffd;
      }
      buf[n++] = 0xe0 | (c >> 12);
      buf[n++] = 0x80 | ((c >> 6) & 63);
      buf[n++] = 0x80 | (c & 63);
    }
  }
  return n;
}

const encoder = new TextEncoder();
const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Unpadded base64url of a 32-byte MAC (43 characters). */
function macText(mac: Uint8Array): string {
  let s = "";
  let i = 0;
  for (; i + 3 <= 32; i += 3) {
    const v = (mac[i] << 16) | (mac[i + 1] << 8) | mac[i + 2];
    s += B64URL[v >>> 18] + B64URL[(v >>> 12) & 63] + B64URL[(v >>> 6) & 63] + B64URL[v & 63];
  }
  const v = (mac[30] << 8) | mac[31]; // the last 2 bytes: 3 characters
  return s + B64URL[v >>> 10] + B64URL[(v >>> 4) & 63] + B64URL[(v << 2) & 63];
}

/** An HMAC-SHA256 signer for one key. */
export class Hmac {
  /** The SHA-256 states after the key block xor ipad / opad (computed once per key). */
  readonly #inner = new Int32Array(INIT);
  readonly #outer = new Int32Array(INIT);
  /** Scratch: the running state, and the message with room for its padding. */
  readonly #h = new Int32Array(8);
  #buf = new Uint8Array(1024);

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
    blocks(this.#inner, ipad, 64);
    blocks(this.#outer, opad, 64);
  }

  /** The 32-byte MAC of `message` (a string is taken as UTF-8). */
  sign(message: string | Uint8Array): Uint8Array {
    let length: number;
    if (typeof message === "string") {
      // At most 3 bytes per UTF-16 unit, plus the padding.
      if (this.#buf.length < message.length * 3 + 72) {
        this.#buf = new Uint8Array(message.length * 3 + 72);
      }
      length = utf8Into(message, this.#buf);
    } else {
      if (this.#buf.length < message.length + 72) this.#buf = new Uint8Array(message.length + 72);
      this.#buf.set(message);
      length = message.length;
    }
    const h = this.#h;
    h.set(this.#inner);
    finish(h, this.#buf, length, 64);
    // The outer hash's message is the inner digest: one block, built from its words.
    for (let i = 0; i < 8; i++) W[i] = h[i];
    W[8] = 0x80000000 | 0;
    for (let i = 9; i < 15; i++) W[i] = 0;
    W[15] = (64 + 32) * 8;
    h.set(this.#outer);
    compress(h);
    return wordsToBytes(h);
  }

  /** The MAC of `message`, as unpadded base64url (43 characters). */
  signText(message: string): string {
    return macText(this.sign(message));
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
