/**
 * The deployment files, checked without a cluster: every Kubernetes object is
 * valid against the API schemas (kubernetes-models), the objects refer to one
 * another correctly (selectors, ports, probes, config and secret keys,
 * dns:/// through the headless Service), and every TASKWIRE_* variable given
 * to a container in compose.yaml or the manifests is one the CLI reads. The
 * image itself is built and run by test/containers.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IContainer, IPodTemplateSpec } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const k8s = join(repo, 'deploy/k8s');
const models = { Namespace, ConfigMap, Secret, Service, Deployment, PodDisruptionBudget } as const;
type Kind = keyof typeof models;

const files = readdirSync(k8s).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
const objects = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(k8s, file), 'utf8')).map((doc) => ({ file, object: doc.toJS() as { kind: Kind; metadata: { name: string } } })),
);
const all = <K extends Kind>(kind: K) =>
  objects.filter(({ object }) => object.kind === kind).map(({ object }) => object as unknown as InstanceType<(typeof models)[K]>);
const one = <K extends Kind>(kind: K, name: string) => {
  const found = all(kind).find((o) => o.metadata?.name === name);
  if (found === undefined) throw new Error(`no ${kind} named ${name}`);
  return found;
};
const containers = (template: IPodTemplateSpec): IContainer[] => template.spec?.containers ?? [];
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** The TASKWIRE_* variables the CLI reads (src/cli: env('TASKWIRE_…')). */
function cliVariables(): Set<string> {
  const cli = join(repo, 'src/cli');
  const sources = readdirSync(cli, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  return new Set(sources.flatMap((f) => [...readFileSync(join(cli, f), 'utf8').matchAll(/env\('(TASKWIRE_[A-Z_]+)'\)/g)].map((m) => m[1]!)));
}

const compose = parse(readFileSync(join(repo, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, { environment?: Record<string, string>; stop_grace_period?: string }>;
};

describe('deploy/k8s', () => {
  it('lists every manifest in the kustomization, and every object is valid against the Kubernetes API schemas', () => {
    const kustomization = parse(readFileSync(join(k8s, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual([...files].sort());
    expect(objects.length).toBeGreaterThan(0);
    for (const { file, object } of objects) {
      const Model = models[object.kind];
      expect(Model, `${file}: unexpected kind ${object.kind}`).toBeDefined();
      expect(() => new Model(object as never).validate(), `${file}: ${object.kind} ${object.metadata.name}`).not.toThrow();
    }
  });

  it('wires Deployments, Services, probes, budgets, config and secrets to one another', () => {
    const deployments = all('Deployment');
    for (const d of deployments) {
      expect(matches(d.spec!.selector.matchLabels, d.spec!.template.metadata?.labels), `${d.metadata!.name} selects its own pods`).toBe(true);
      for (const c of containers(d.spec!.template)) {
        for (const from of c.envFrom ?? []) if (from.configMapRef) one('ConfigMap', from.configMapRef.name!);
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref) expect(Object.keys(one('Secret', ref.name!).stringData ?? {}), `${e.name} from ${ref.name}`).toContain(ref.key);
        }
      }
    }
    const pods = (selector: Record<string, string> | undefined) => deployments.filter((d) => matches(selector, d.spec!.template.metadata?.labels));
    for (const s of all('Service')) {
      const [target] = pods(s.spec!.selector);
      expect(target, `Service ${s.metadata!.name} selects a Deployment`).toBeDefined();
      const ports = containers(target!.spec!.template).flatMap((c) => c.ports ?? []);
      for (const p of s.spec!.ports ?? []) expect(ports.map((cp) => cp.name)).toContain(p.targetPort);
    }
    for (const b of all('PodDisruptionBudget')) expect(pods(b.spec!.selector!.matchLabels), `PDB ${b.metadata!.name}`).toHaveLength(1);

    // The server answers grpc.health.v1 on its gRPC port: both probes use it.
    const [server] = containers(one('Deployment', 'taskwire-server').spec!.template);
    const grpcPort = server!.ports!.find((p) => p.name === 'grpc')!.containerPort;
    expect(server!.readinessProbe?.grpc?.port).toBe(grpcPort);
    expect(server!.livenessProbe?.grpc?.port).toBe(grpcPort);

    // Workers reach every replica: dns:/// through the headless Service.
    const headless = one('Service', 'taskwire-server-headless');
    expect(headless.spec!.clusterIP).toBe('None');
    const [worker] = containers(one('Deployment', 'taskwire-worker').spec!.template);
    const address = worker!.env!.find((e) => e.name === 'TASKWIRE_SERVER')!.value;
    expect(address).toBe(`dns:///${headless.metadata!.name}:${headless.spec!.ports![0]!.port}`);
  });

  it('serves metrics on every pod, on the port its scrape annotations name', () => {
    for (const d of all('Deployment')) {
      const [c] = containers(d.spec!.template);
      const listen = c!.env!.find((e) => e.name === 'TASKWIRE_METRICS_LISTEN')?.value;
      expect(listen, d.metadata!.name).toMatch(/^0\.0\.0\.0:\d+$/);
      const port = Number(listen!.split(':')[1]);
      expect(c!.ports!.find((p) => p.name === 'metrics')?.containerPort, d.metadata!.name).toBe(port);
      const annotations = d.spec!.template.metadata?.annotations ?? {};
      expect(annotations['prometheus.io/scrape'], d.metadata!.name).toBe('true');
      expect(Number(annotations['prometheus.io/port']), d.metadata!.name).toBe(port);
      expect(annotations['prometheus.io/path']).toBe('/metrics');
    }
    for (const name of ['server', 'worker']) expect(compose.services[name]!.environment!.TASKWIRE_METRICS_LISTEN, name).toBe('0.0.0.0:9464');
  });

  it('gives each container longer to stop than its drain delay and grace', () => {
    for (const d of all('Deployment')) {
      const env = containers(d.spec!.template)[0]!.env!;
      const ms = (name: string) => Number(env.find((e) => e.name === name)?.value ?? 0);
      const needed = ms('TASKWIRE_DRAIN_DELAY_MS') + ms('TASKWIRE_GRACE_MS');
      expect(needed).toBeGreaterThan(0);
      expect(d.spec!.template.spec!.terminationGracePeriodSeconds! * 1000, d.metadata!.name).toBeGreaterThan(needed);
    }
  });
});

describe('container configuration', () => {
  const known = cliVariables();

  it('passes only TASKWIRE_* variables that the CLI reads (compose.yaml and deploy/k8s)', () => {
    const given: string[] = [];
    for (const service of Object.values(compose.services)) given.push(...Object.keys(service.environment ?? {}));
    for (const c of all('ConfigMap')) given.push(...Object.keys(c.data ?? {}));
    for (const d of all('Deployment')) for (const c of containers(d.spec!.template)) given.push(...(c.env ?? []).map((e) => e.name));
    const taskwire = given.filter((name) => name.startsWith('TASKWIRE_'));
    expect(taskwire.length).toBeGreaterThan(10);
    expect(taskwire.filter((name) => !known.has(name))).toEqual([]);
  });

  it('stops a compose container later than its drain grace', () => {
    for (const name of ['server', 'worker']) {
      const service = compose.services[name]!;
      const graceMs = Number(service.environment!.TASKWIRE_GRACE_MS);
      expect(Number(service.stop_grace_period!.replace(/s$/, '')) * 1000, name).toBeGreaterThan(graceMs);
    }
  });
});
