import type { TlsClientOptions } from '../rpc/index.js';

/** The options every command shares (`taskwire --server … <command>`), parsed once in main.ts. */
export interface GlobalOptions {
  readonly server: string;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly descriptorPaths: readonly string[];
  readonly tls: TlsClientOptions | undefined;
}
