// Origin policy: same-origin by default, allowlist with wildcard subdomains.
//
// An origin is compared as scheme + host + port, exactly, for every scheme. `new URL(x).origin`
// is not used: it is the string "null" for every non-http(s) scheme (chrome-extension://,
// moz-extension://, app schemes), so comparing it would let any such origin match any other.

/** Compiled origin policy: returns whether a request's Origin header is allowed. */
export type OriginCheck = (origin: string | null, requestUrl: string) => boolean;

/** The parts of an origin that are compared. */
interface OriginParts {
  /** Lower-case scheme without the colon: "https", "chrome-extension". */
  scheme: string;
  /** Lower-case host name, without the port. */
  host: string;
  /** The port, with the scheme's default made explicit ("443" for https); "" when none. */
  port: string;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = {
  http: "80",
  https: "443",
  ws: "80",
  wss: "443",
};

/** ws/wss requests are compared as the http/https pages that open them. */
function pageScheme(scheme: string): string {
  return scheme === "ws" ? "http" : scheme === "wss" ? "https" : scheme;
}

// scheme "://" host [":" port], nothing else (no path, query, fragment or user info).
const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[^/?#@:[\]\s]+)(?::(\d{1,5}))?\/?$/i;

/** Parse `scheme://host[:port]` exactly; `undefined` if it is anything else. */
function parseOrigin(text: string): OriginParts | undefined {
  const m = ORIGIN.exec(text);
  if (m === null) return undefined;
  const scheme = m[1].toLowerCase();
  let host = m[2].toLowerCase();
  if (scheme in DEFAULT_PORTS) {
    // Let the URL parser normalise http(s) hosts (IDNA, IPv4 forms) as browsers do.
    try {
      host = new URL(`${scheme}://${m[2]}`).hostname.toLowerCase();
    } catch {
      return undefined;
    }
  }
  const port = m[3] === undefined ? DEFAULT_PORTS[scheme] ?? "" : String(Number(m[3]));
  if (port !== "" && Number(port) > 65535) return undefined;
  return { scheme: pageScheme(scheme), host, port };
}

function sameParts(a: OriginParts, b: OriginParts): boolean {
  return a.scheme === b.scheme && a.host === b.host && a.port === b.port;
}

/** One allowlist entry. `scheme` undefined: http or https. */
interface Entry {
  scheme: string | undefined;
  /** The exact host, or for a wildcard the suffix including its leading dot. */
  host: string;
  wildcard: boolean;
  /** The port; for a scheme-less wildcard "" means the scheme's default. */
  port: string;
}

const WILDCARD = /^(?:([a-z][a-z0-9+.-]*):\/\/)?\*\.([^/?#@:[\]\s*]+)(?::(\d{1,5}))?$/i;

function compileEntry(entry: string): Entry {
  const bad = (why: string) =>
    new TypeError(`Cannot use origin allowlist entry "${entry}": ${why}`);
  if (typeof entry !== "string") throw bad("not a string");
  const w = WILDCARD.exec(entry);
  if (w !== null) {
    const scheme = w[1]?.toLowerCase();
    const port = w[3] === undefined
      ? scheme === undefined ? "" : DEFAULT_PORTS[scheme] ?? ""
      : String(Number(w[3]));
    return {
      scheme: scheme === undefined ? undefined : pageScheme(scheme),
      host: "." + w[2].toLowerCase(),
      wildcard: true,
      port,
    };
  }
  const parts = parseOrigin(entry);
  if (parts === undefined) {
    throw bad(
      'not an origin: write scheme://host[:port] (e.g. "https://app.example.com", ' +
        '"http://localhost:3000", "chrome-extension://<id>"), "*.example.com" or "*"',
    );
  }
  return { scheme: parts.scheme, host: parts.host, wildcard: false, port: parts.port };
}

function matches(e: Entry, o: OriginParts): boolean {
  if (e.scheme === undefined) {
    if (o.scheme !== "http" && o.scheme !== "https") return false;
    if (o.port !== (e.port === "" ? DEFAULT_PORTS[o.scheme] : e.port)) return false;
  } else if (e.scheme !== o.scheme || e.port !== o.port) {
    return false;
  }
  return e.wildcard ? o.host.length > e.host.length && o.host.endsWith(e.host) : e.host === o.host;
}

/**
 * Build an origin check.
 * - `origin === null` (no header): allowed when `allowNoOrigin`.
 * - `"null"` (an opaque origin: sandboxed frames, `file:`) is a foreign origin.
 * - same-origin (scheme, host and port of the request URL; ws/wss count as http/https) is allowed.
 * - allowlist entries: `"*"`, `"https://app.example.com"`, `"https://*.example.com"`,
 *   `"*.example.com"` (http or https, default port), `"chrome-extension://<id>"`. Every scheme
 *   is compared exactly, default ports included (`https://x:443` is `https://x`).
 *
 * @throws {TypeError} For an entry that is not one of those forms (e.g. `"localhost:3000"`).
 */
export function compileOriginCheck(
  allowed: readonly string[],
  allowNoOrigin: boolean,
): OriginCheck {
  const entries = allowed.filter((e) => e !== "*").map(compileEntry);
  const any = allowed.includes("*");
  return (origin, requestUrl) => {
    if (origin === null) return allowNoOrigin;
    if (any) return true;
    const o = parseOrigin(origin);
    if (o === undefined) return false; // "null", or not an origin at all
    const self = requestOrigin(requestUrl);
    if (self !== undefined && sameParts(o, self)) return true;
    for (const e of entries) if (matches(e, o)) return true;
    return false;
  };
}

function requestOrigin(requestUrl: string): OriginParts | undefined {
  let r: URL;
  try {
    r = new URL(requestUrl);
  } catch {
    return undefined;
  }
  return parseOrigin(`${r.protocol}//${r.host}`);
}
