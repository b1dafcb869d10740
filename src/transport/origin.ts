/**
 * Whether a WebSocket upgrade from a browser page may proceed. Browsers send the page's Origin with every
 * upgrade and, unlike HTTP requests, don't hold a cross-origin socket to CORS: without this check any web
 * page could open a socket with a token it got hold of, or probe a node on the user's network. Apps and
 * the CLI send no Origin and are let in. Pure: the headers and the setting in, a verdict out.
 */
export function originAllowed(origin: string, host: string, allowed: readonly string[]): boolean {
  if (!origin) return true;
  const o = origin.toLowerCase();
  if (allowed.includes('*') || allowed.includes(o)) return true;
  // The node's own pages (the web client it serves): the origin's host is the Host the request was sent to.
  try {
    return new URL(o).host === host.toLowerCase();
  } catch {
    return false;
  }
}
