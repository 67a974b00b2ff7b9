import { cors } from '@connectrpc/connect';
import type { NodeHandlerFn } from './node.js';

/** Headers of ours a browser may send and read, beside the protocols' own. */
const ALLOWED_HEADERS = [...cors.allowedHeaders, 'Authorization', 'Taskwire-Idempotency-Key'].join(', ');
const EXPOSED_HEADERS = [...cors.exposedHeaders, 'Taskwire-Task-Id'].join(', ');
const ALLOWED_METHODS = cors.allowedMethods.join(', ');

/**
 * Lets scripts on the listed origins call the listener ("*" for any).
 * Requests from other origins get no CORS headers, so browsers keep their
 * answers from the page; their preflights are refused with 403.
 */
export function withCors(origins: readonly string[], next: NodeHandlerFn): NodeHandlerFn {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return (request, response) => {
    const origin = request.headers.origin;
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined;
    if (origin === undefined) return next(request, response);
    if (!any && !allowed.has(origin)) {
      if (!preflight) return next(request, response);
      response.writeHead(403, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`origin ${origin} may not call this server: add it to the server's CORS origins\n`);
      return;
    }
    response.setHeader('Access-Control-Allow-Origin', origin);
    response.setHeader('Vary', 'Origin');
    if (preflight) {
      response.writeHead(204, {
        'Access-Control-Allow-Methods': ALLOWED_METHODS,
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': '7200',
      });
      response.end();
      return;
    }
    response.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    next(request, response);
  };
}
