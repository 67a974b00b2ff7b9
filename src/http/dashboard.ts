import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { NodeHandlerFn } from './node.js';

/**
 * Where `npm run build` puts the dashboard (ui/ → dist/ui): beside dist/src when this module runs
 * built, under dist/ when it runs from source (tests, tsx).
 */
export const DASHBOARD_DIR = fileURLToPath(new URL(basename(fileURLToPath(new URL('../..', import.meta.url))) === 'dist' ? '../../ui/' : '../../dist/ui/', import.meta.url));

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer;
  readonly cache: string;
}

/**
 * The built dashboard, read into memory once: only the files that exist are
 * served, so no request path reaches the file system. Hashed assets are
 * immutable; index.html is revalidated so a new build shows at once.
 */
export function loadDashboard(dir: string = DASHBOARD_DIR): ReadonlyMap<string, Asset> | undefined {
  let index: Buffer;
  try {
    index = readFileSync(join(dir, 'index.html'));
  } catch {
    return undefined;
  }
  const assets = new Map<string, Asset>();
  const add = (path: string, body: Buffer) => {
    const name = relative(dir, path).split(sep).join('/');
    const type = TYPES[extname(path)] ?? 'application/octet-stream';
    const cache = name.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache';
    assets.set(`/${name}`, { type, body, gzip: gzipSync(body), cache });
  };
  const walk = (at: string) => {
    for (const entry of readdirSync(at)) {
      const path = join(at, entry);
      if (statSync(path).isDirectory()) walk(path);
      else add(path, path === join(dir, 'index.html') ? index : readFileSync(path));
    }
  };
  walk(dir);
  assets.set('/', assets.get('/index.html')!);
  return assets;
}

/**
 * Serves the dashboard's files on GET and HEAD, and hands everything else
 * (every RPC: POST, or a Connect GET on /package.Service/Method) to `next`.
 */
export function withDashboard(assets: ReadonlyMap<string, Asset>, next: NodeHandlerFn): NodeHandlerFn {
  return ((request, response) => {
    const method = request.method ?? 'GET';
    const path = (request.url ?? '/').split('?')[0]!;
    const asset = method === 'GET' || method === 'HEAD' ? assets.get(path) : undefined;
    if (asset === undefined) return next(request as never, response as never);
    const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    const body = gzip ? asset.gzip : asset.body;
    const headers: Record<string, string | number> = {
      'content-type': asset.type,
      'content-length': body.length,
      'cache-control': asset.cache,
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
      // Everything the page needs comes from this origin; it calls the API here too.
      'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    };
    if (gzip) headers['content-encoding'] = 'gzip';
    (response as import('node:http').ServerResponse).writeHead(200, headers);
    (response as import('node:http').ServerResponse).end(method === 'HEAD' ? undefined : body);
  }) as NodeHandlerFn;
}
