import { describe, expect, it } from 'vitest';
import { duration, errorCode, integer, label, listenAddress, parseDuration, serverAddress, taskStates, taskTypePath, timeOrAge } from '../../src/cli/values.js';
import { Code } from '../../src/errors.js';

describe('option values', () => {
  it('filter values: ages or times, labels, status codes, states', () => {
    expect(timeOrAge('1h', 10_000_000)).toBe(10_000_000 - 3_600_000);
    expect(timeOrAge('2026-01-31T12:00:00Z')).toBe(Date.UTC(2026, 0, 31, 12));
    expect(timeOrAge('1d', 100_000_000)).toBe(100_000_000 - 86_400_000);
    for (const bad of ['yesterday', '-1h', '1w', '', '1969-12-31T00:00:00Z']) expect(() => timeOrAge(bad)).toThrow(/an age \(30s, 5m, 1h, 7d/);
    expect(label('b=2', label('a=x=y'))).toEqual({ a: 'x=y', b: '2' });
    for (const bad of ['novalue', '=v']) expect(() => label(bad)).toThrow(/key=value/);
    expect(errorCode(Code)('unavailable')).toBe(14);
    expect(errorCode(Code)('3')).toBe(3);
    for (const bad of ['OK', '0', '17', 'nope']) expect(() => errorCode(Code)(bad)).toThrow(/1\.\.16 or its name/);
    const states = taskStates({ QUEUED: 2, FAILED: 5 });
    expect(states('failed, queued', [5])).toEqual([5, 2]);
    expect(() => states('failed,sleeping')).toThrow(/queued, failed/);
  });

  it('durations: milliseconds, or with a unit', () => {
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    for (const bad of ['', 'abc', '-5', '1w', '1 s', '0.5ms']) expect(parseDuration(bad)).toBeUndefined();
    expect(() => duration(500, 3_600_000)('100')).toThrow(/500ms\.\.1h/);
    expect(() => duration(500, 3_600_000)('2h')).toThrow(/500ms\.\.1h/);
  });

  it('integers in a range, nothing else', () => {
    expect(integer(1, 100)('7')).toBe(7);
    for (const bad of ['0', '101', '-1', '1.5', 'abc', '', '1e2']) expect(() => integer(1, 100)(bad)).toThrow(/1\.\.100/);
  });

  it('a server without a port means 50051', () => {
    expect(serverAddress('127.0.0.1')).toBe('127.0.0.1:50051');
    expect(serverAddress('taskwire.internal')).toBe('taskwire.internal:50051');
    expect(serverAddress('::1')).toBe('[::1]:50051');
    expect(serverAddress('[::1]')).toBe('[::1]:50051');
    expect(serverAddress('10.0.0.1,10.0.0.2:6000')).toBe('10.0.0.1:50051,10.0.0.2:6000');
    expect(serverAddress('127.0.0.1:7000')).toBe('127.0.0.1:7000');
    expect(serverAddress('dns:///taskwire.internal:50051')).toBe('dns:///taskwire.internal:50051');
    expect(() => serverAddress('host:70000')).toThrow(/port/);
  });

  it('a listen address needs a port', () => {
    expect(listenAddress('0.0.0.0:50051')).toBe('0.0.0.0:50051');
    expect(listenAddress('[::]:0')).toBe('[::]:0');
    for (const bad of ['localhost', ':50051', 'host:99999', 'a b:1']) expect(() => listenAddress(bad)).toThrow(/host:port/);
  });

  it('task types in the spellings people copy', () => {
    for (const spelling of ['/demo.v1.DemoService/Echo', 'demo.v1.DemoService/Echo', 'demo.v1.DemoService.Echo']) {
      expect(taskTypePath(spelling)).toBe('/demo.v1.DemoService/Echo');
    }
    for (const bad of ['Echo', 'DemoService/Echo', '/demo.v1.DemoService/', 'demo v1']) expect(() => taskTypePath(bad)).toThrow(/not a task type/);
  });
});
