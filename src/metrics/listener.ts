import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsListener {
  readonly port: number;
  close(): Promise<void>;
}

/** "host:port", "[v6]:port" → the parts, or an error naming the flag. */
export function parseMetricsAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (match === null || port > 65535) {
    throw new Error(`the metrics listen address "${address}" must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** Serves `GET /metrics` in the Prometheus text format on a port of its own. */
export async function listenForScrapes(address: string, registry: Registry): Promise<MetricsListener> {
  const { host, port } = parseMetricsAddress(address);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => {
      const inUse = /EADDRINUSE/.test(String(error)) ? 'the port is in use; ' : '';
      reject(new Error(`cannot listen on ${address} (the metrics listener): ${inUse}${String(error)}; give --metrics-listen another address`));
    });
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
