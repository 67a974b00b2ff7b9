import { invalidArgument } from '../errors.js';
import { toRecord, type TaskRow } from './rows.js';
import type { ListPage } from './types.js';

/**
 * List cursors are opaque to clients: the last row's sequence number and the
 * order it was listed in ("s": newest first, the original form; "o": oldest
 * first), base64url-encoded.
 */
export function encodeCursor(seq: number, oldestFirst = false): string {
  return Buffer.from(`${oldestFirst ? 'o' : 's'}${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string, oldestFirst = false): number {
  const match = /^([so])(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (match === null) {
    throw invalidArgument('page_token is not one this server issued: pass next_page_token from a previous response, or leave it empty');
  }
  if ((match[1] === 'o') !== oldestFirst) {
    throw invalidArgument(`page_token continues a listing ${match[1] === 'o' ? 'oldest' : 'newest'} first: ask with the same order, or leave page_token empty to start again`);
  }
  return Number(match[2]);
}

/** A page of `Store.list` from rows read with a limit of pageSize + 1, newest first. */
export function listPage(rows: readonly TaskRow[], pageSize: number, oldestFirst = false): ListPage {
  const page = rows.slice(0, pageSize);
  return {
    tasks: page.map(toRecord),
    ...(rows.length > pageSize ? { next: encodeCursor(page[page.length - 1]!.seq, oldestFirst) } : {}),
    after: (index) => encodeCursor(page[index]!.seq, oldestFirst),
  };
}
