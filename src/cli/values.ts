import { InvalidArgumentError } from 'commander';

/**
 * Parsers for option values, run by commander at start on the command line's
 * value and on the TASKWIRE_* variable's alike: a bad value stops the command
 * with one line naming the flag, the variable it came from and what is allowed.
 */

/** An integer in min..max. */
export const integer =
  (min: number, max: number) =>
  (text: string): number => {
    const value = /^[+-]?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(`give an integer in ${min}..${max}.`);
    }
    return value;
  };

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, written as a number of ms or with a unit: 1500, 1500ms, 30s, 5m, 1h, 7d. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (match === null) return undefined;
  const ms = Number(match[1]) * UNITS[match[2] ?? 'ms']!;
  return Number.isInteger(ms) ? ms : undefined;
}

const showMs = (ms: number): string =>
  ms % 86_400_000 === 0 && ms > 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 && ms > 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 && ms > 0 ? `${ms / 60_000}m` : ms % 1000 === 0 && ms > 0 ? `${ms / 1000}s` : `${ms}ms`;

/** A duration in min..max milliseconds. */
export const duration =
  (min: number, max: number) =>
  (text: string): number => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < min || ms > max) {
      throw new InvalidArgumentError(`give a duration in ${showMs(min)}..${showMs(max)}: milliseconds (1500) or with a unit (500ms, 30s, 5m, 1h, 7d).`);
    }
    return ms;
  };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** One of a few words. */
export const choice =
  <T extends string>(values: readonly T[]) =>
  (text: string): T => {
    const value = text.trim().toLowerCase() as T;
    if (!values.includes(value)) throw new InvalidArgumentError(`give one of ${values.join(', ')}.`);
    return value;
  };

/** A local address to listen on: host:port with a port in 0..65535 (0 picks a free one). */
export function listenAddress(text: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  if (match === null || Number(match[2]) > 65_535) {
    throw new InvalidArgumentError('give host:port with a port in 0..65535, e.g. 127.0.0.1:50051, 0.0.0.0:50051 or [::]:50051.');
  }
  return text.trim();
}

export const DEFAULT_PORT = 50051;

/**
 * A server to reach: host:port, host alone (port 50051), a comma-separated
 * list of those, or a gRPC target such as dns:///name:port.
 */
export function serverAddress(text: string): string {
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidArgumentError('give host:port, e.g. 127.0.0.1:50051.');
  if (/^[a-z][a-z0-9+.-]*:/.test(trimmed) && !/^[^:]+:\d+$/.test(trimmed) && !trimmed.includes(',')) return trimmed; // dns:///…, unix:…, ipv4:…
  return trimmed
    .split(',')
    .map((part) => {
      const host = part.trim();
      const withPort = /^\[[0-9a-fA-F:.]+\]:\d+$/.test(host) || /^[^:[\]]+:\d+$/.test(host);
      if (withPort) {
        if (Number(host.slice(host.lastIndexOf(':') + 1)) > 65_535) throw new InvalidArgumentError(`the port of "${host}" must be in 1..65535.`);
        return host;
      }
      if (/^\[[0-9a-fA-F:.]+\]$/.test(host) || /^[A-Za-z0-9.-]+$/.test(host)) return `${host}:${DEFAULT_PORT}`;
      if (/^[0-9a-fA-F:]+$/.test(host) && host.includes('::')) return `[${host}]:${DEFAULT_PORT}`;
      throw new InvalidArgumentError(`"${host}" is not host:port (e.g. 127.0.0.1:50051), a host, or dns:///name:port.`);
    })
    .join(',');
}

/**
 * A task type as its method path, /pkg.Service/Method, from any of the
 * spellings people copy: /pkg.Service/Method, pkg.Service/Method (gRPC) or
 * pkg.Service.Method (grpcurl).
 */
export function taskTypePath(text: string): string {
  const t = text.trim();
  const slashed = /^\/?([A-Za-z_][\w.]*\.[A-Za-z_]\w*)\/([A-Za-z_]\w*)$/.exec(t);
  if (slashed !== null) return `/${slashed[1]}/${slashed[2]}`;
  const dotted = /^([A-Za-z_][\w.]*\.[A-Za-z_]\w*)\.([A-Za-z_]\w*)$/.exec(t);
  if (dotted !== null) return `/${dotted[1]}/${dotted[2]}`;
  throw new InvalidArgumentError(`"${text}" is not a task type: give the method as /demo.v1.DemoService/Echo, demo.v1.DemoService/Echo or demo.v1.DemoService.Echo.`);
}

/**
 * A point in time: an age back from now (1500, 30s, 5m, 1h, as durations are
 * written; "1h" is an hour ago) or an ISO 8601 time (2026-01-31T12:00:00Z).
 * Returns epoch milliseconds.
 */
export function timeOrAge(text: string, now = Date.now()): number {
  const age = parseDuration(text);
  if (age !== undefined) return now - age;
  const trimmed = text.trim();
  const time = /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (!Number.isFinite(time) || time < 0) {
    throw new InvalidArgumentError('give an age (30s, 5m, 1h, 7d, meaning that long ago) or an ISO 8601 time such as 2026-01-31T12:00:00Z.');
  }
  return time;
}

/** One `key=value` label, added to those given before (the flag repeats). */
export function label(text: string, previous: Readonly<Record<string, string>> = {}): Record<string, string> {
  const at = text.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('give key=value, e.g. --label tenant=acme; repeat the flag for several.');
  return { ...previous, [text.slice(0, at).trim()]: text.slice(at + 1) };
}

/** A google.rpc.Code, by name (UNAVAILABLE, unavailable) or number (14); OK is not an error. */
export function errorCode(names: Readonly<Record<string, number>>) {
  return (text: string): number => {
    const trimmed = text.trim();
    const code = /^\d+$/.test(trimmed) ? Number(trimmed) : names[trimmed.toUpperCase()];
    if (code === undefined || code < 1 || code > 16) {
      throw new InvalidArgumentError(`give a status code, 1..16 or its name: ${Object.keys(names).filter((n) => n !== 'OK').join(', ')}.`);
    }
    return code;
  };
}

/** Task states, comma-separated or repeated: failed,cancelled. */
export function taskStates(names: Readonly<Record<string, number>>) {
  return (text: string, previous: readonly number[] = []): number[] => {
    const states = text.split(',').map((part) => {
      const state = names[part.trim().toUpperCase()];
      if (state === undefined) throw new InvalidArgumentError(`give states from ${Object.keys(names).join(', ').toLowerCase()}, comma-separated.`);
      return state;
    });
    return [...new Set([...previous, ...states])];
  };
}
