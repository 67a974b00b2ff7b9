import { readFileSync } from 'node:fs';
import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';

/** PEM contents or file paths. */
export interface TlsServerOptions {
  readonly cert: string;
  readonly key: string;
  /** CA that client certificates must chain to; set it to require mTLS. */
  readonly clientCa?: string;
}

export interface TlsClientOptions {
  /** CA that the server's certificate must chain to; the system roots when absent. */
  readonly ca?: string;
  /** A client certificate and key, for mTLS. */
  readonly cert?: string;
  readonly key?: string;
}

/** Accepts PEM text or a path to a PEM file. */
export function pem(value: string): Buffer {
  return Buffer.from(value.includes('-----BEGIN') ? value : readFileSync(value, 'utf8'));
}

export function createServerCredentials(tls: TlsServerOptions | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const clientCa = tls.clientCa === undefined ? null : pem(tls.clientCa);
  return ServerCredentials.createSsl(clientCa, [{ cert_chain: pem(tls.cert), private_key: pem(tls.key) }], clientCa !== null);
}

export function createChannelCredentials(tls: TlsClientOptions | undefined): ChannelCredentials {
  if (tls === undefined) return ChannelCredentials.createInsecure();
  return ChannelCredentials.createSsl(
    tls.ca === undefined ? null : pem(tls.ca),
    tls.key === undefined ? null : pem(tls.key),
    tls.cert === undefined ? null : pem(tls.cert),
  );
}
