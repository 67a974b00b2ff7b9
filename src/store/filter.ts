import type { ListFilter, TaskQuery } from './types.js';

/**
 * A task filter as SQL, once for both stores: the WHERE clause of a listing
 * or of a bulk action's selection, with its parameters in order. Only the
 * placeholders and the JSON operators differ between the dialects.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Where {
  /** `WHERE …`, or empty when nothing is filtered. */
  readonly sql: string;
  readonly values: unknown[];
}

/** Where a listing or a selection continues: after this row, in this direction. */
export interface Keyset {
  readonly seq: number;
  readonly oldestFirst: boolean;
}

/** The states a filter admits: `states`, or the single `state` of the older field; undefined for any. */
export function statesOf(query: TaskQuery): readonly number[] | undefined {
  if (query.states !== undefined && query.states.length > 0) return query.states;
  return query.state === undefined ? undefined : [query.state];
}

/**
 * The WHERE clause for `query`, continuing after `keyset` if given. Values
 * are numbered from `first` (PostgreSQL's `$n`), so a caller may append more.
 */
export function taskWhere(dialect: Dialect, query: TaskQuery, keyset?: Keyset, first = 1): Where {
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (value: unknown): string => {
    values.push(value);
    return dialect === 'postgres' ? `$${first + values.length - 1}` : '?';
  };
  if (query.queue !== undefined) where.push(`queue = ${param(query.queue)}`);
  if (query.type !== undefined) where.push(`type = ${param(query.type)}`);
  const states = statesOf(query);
  if (states !== undefined) {
    where.push(states.length === 1 ? `state = ${param(states[0])}` : `state IN (${states.map(param).join(', ')})`);
  }
  if (query.createdSince !== undefined) where.push(`created_at >= ${param(query.createdSince)}`);
  if (query.createdBefore !== undefined) where.push(`created_at < ${param(query.createdBefore)}`);
  if (query.finishedSince !== undefined) where.push(`finished_at >= ${param(query.finishedSince)}`);
  if (query.finishedBefore !== undefined) where.push(`finished_at < ${param(query.finishedBefore)}`);
  for (const [key, value] of Object.entries(query.labels ?? {})) {
    // Labels are stored as a JSON object in text; a key is matched as data, never spliced into a path.
    where.push(
      dialect === 'postgres'
        ? `labels::jsonb ->> ${param(key)} = ${param(value)}`
        : `EXISTS (SELECT 1 FROM json_each(tasks.labels) WHERE key = ${param(key)} AND value = ${param(value)})`,
    );
  }
  if (query.errorCode !== undefined) {
    where.push(
      dialect === 'postgres'
        ? `(errors -> -1 ->> 'code')::int = ${param(query.errorCode)}`
        : `json_extract(errors, '$[#-1].code') = ${param(query.errorCode)}`,
    );
  }
  if (keyset !== undefined) where.push(`seq ${keyset.oldestFirst ? '>' : '<'} ${param(keyset.seq)}`);
  return { sql: where.length > 0 ? `WHERE ${where.join(' AND ')}` : '', values };
}

/** A listing's query: the filter, the page after the cursor, the order, one row more than the page. */
export function listSql(dialect: Dialect, columns: string, filter: ListFilter, after: number | undefined, limit: number): { text: string; values: unknown[] } {
  const oldestFirst = filter.order === 'oldest';
  const where = taskWhere(dialect, filter, after === undefined ? undefined : { seq: after, oldestFirst });
  const limitParam = dialect === 'postgres' ? `$${where.values.length + 1}` : '?';
  return {
    text: `SELECT ${columns} FROM tasks ${where.sql} ORDER BY seq ${oldestFirst ? 'ASC' : 'DESC'} LIMIT ${limitParam}`,
    values: [...where.values, limit],
  };
}

/** A bulk action's selection: ids of matching tasks, oldest first, after `after`. */
export function matchingSql(dialect: Dialect, query: TaskQuery, after: number | undefined, limit: number): { text: string; values: unknown[] } {
  const where = taskWhere(dialect, query, after === undefined ? undefined : { seq: after, oldestFirst: true });
  const limitParam = dialect === 'postgres' ? `$${where.values.length + 1}` : '?';
  return { text: `SELECT id, seq FROM tasks ${where.sql} ORDER BY seq ASC LIMIT ${limitParam}`, values: [...where.values, limit] };
}
