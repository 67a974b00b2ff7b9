import { invalidArgument } from '../errors.js';

/** List cursors are opaque to clients: the last row's sequence number, base64url-encoded. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`s${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const match = /^s(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (match === null) {
    throw invalidArgument('page_token is not one this server issued: pass next_page_token from a previous response, or leave it empty');
  }
  return Number(match[1]);
}
