// Origin policy: same-origin by default, allowlist with wildcard subdomains.

/** Compiled origin policy: returns whether a request's Origin header is allowed. */
export type OriginCheck = (origin: string | null, requestUrl: string) => boolean;

/**
 * Build an origin check.
 * - `origin === null` (no header): allowed when `allowNoOrigin`.
 * - `"null"` is a foreign origin.
 * - same-origin (scheme, host and port of the request URL; ws/wss count as http/https) is allowed.
 * - allowlist entries: `"*"`, `"https://app.example.com"`, `"https://*.example.com"`, `"*.example.com"`.
 */
export function compileOriginCheck(
  allowed: readonly string[],
  allowNoOrigin: boolean,
): OriginCheck {
  if (allowed.includes("*")) return (origin) => origin !== null || allowNoOrigin;
  const exact = new Set<string>();
  const wild: { scheme: string | undefined; suffix: string; port: string }[] = [];
  for (const entry of allowed) {
    const m = /^(?:([a-z][a-z0-9+.-]*):\/\/)?\*\.([^/:]+)(?::(\d+))?$/i.exec(entry);
    if (m) {
      wild.push({
        scheme: m[1]?.toLowerCase(),
        suffix: "." + m[2].toLowerCase(),
        port: m[3] ?? "",
      });
      continue;
    }
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new TypeError(
        `Cannot use origin allowlist entry "${entry}": not an origin or *.domain`,
      );
    }
    exact.add(url.origin);
  }
  return (origin, requestUrl) => {
    if (origin === null) return allowNoOrigin;
    if (origin === "null") return false;
    let o: URL;
    try {
      o = new URL(origin);
    } catch {
      return false;
    }
    if (sameOrigin(o, requestUrl)) return true;
    if (exact.has(o.origin)) return true;
    const host = o.hostname.toLowerCase();
    const scheme = o.protocol.slice(0, -1);
    for (const w of wild) {
      if (w.scheme !== undefined && w.scheme !== scheme) continue;
      if (w.port !== o.port) continue;
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) return true;
    }
    return false;
  };
}

function sameOrigin(o: URL, requestUrl: string): boolean {
  let r: URL;
  try {
    r = new URL(requestUrl);
  } catch {
    return false;
  }
  const norm = (p: string) => p === "ws:" ? "http:" : p === "wss:" ? "https:" : p;
  return norm(r.protocol) === o.protocol && r.hostname === o.hostname && r.port === o.port;
}
