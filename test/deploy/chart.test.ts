/**
 * The Helm chart (helm/mcp-authz). Always: values.schema.json is a valid draft-07 schema that
 * accepts values.yaml and every examples/*.yaml (merged over values.yaml, as Helm does) and
 * refuses values that cannot run; every template is well formed (balanced actions and
 * blocks, included templates defined, `.Values` paths declared in values.yaml). Where a
 * `helm` binary is on PATH: `helm lint`, and `helm template` of every example with the rendered
 * objects checked. Without helm, the same rendering checks run through test/deploy/render (Go's
 * text/template + sprig, helm's engine) where Go and the sprig sources are installed; with
 * neither, those tests are skipped and say so.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { Ajv } from 'ajv';
import { actions, checkBlocks, includes, valuesPaths } from './chart-structure.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CHART = join(ROOT, 'helm/mcp-authz');
const TEMPLATES = join(CHART, 'templates');
const EXAMPLES = join(CHART, 'examples');

type Values = Record<string, unknown>;
const readYaml = (path: string) => parseYaml(readFileSync(path, 'utf8')) as Values;
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Values;
const defaults = readYaml(join(CHART, 'values.yaml'));
const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's merge of user values over the chart's: maps merge, anything else replaces, null deletes. */
function merge(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(out[key])) out[key] = merge(out[key] as Values, value);
    else out[key] = value;
  }
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
const validate = ajv.compile(schema);

function errorsOf(values: Values): string[] {
  return validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(top)'} ${e.message ?? ''}`);
}

function templateFiles(dir = TEMPLATES): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? templateFiles(path) : [path];
  });
}

describe('values.schema.json', () => {
  it('is a valid JSON Schema draft-07 document, strict at the top level', () => {
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.equal(ajv.validateSchema(schema), true, JSON.stringify(ajv.errors));
    assert.equal(schema.additionalProperties, false);
  });

  it('accepts values.yaml and every example (merged over values.yaml)', () => {
    assert.deepEqual(errorsOf(defaults), []);
    assert.ok(examples.length >= 5, `examples: ${examples.join(', ')}`);
    for (const name of examples) assert.deepEqual(errorsOf(merge(defaults, readYaml(join(EXAMPLES, name)))), [], name);
  });

  it('refuses values that cannot run, unknown keys and wrong types', () => {
    const refused: [string, Values, RegExp][] = [
      ['two replicas on SQLite', { replicaCount: 2 }, /\/replicaCount must be <= 1/],
      ['autoscaling on SQLite', { autoscaling: { enabled: true } }, /\/autoscaling\/enabled must be equal to constant/],
      ['a Redis password without Redis', { secrets: { redisPassword: 'x' } }, /\/secrets\/redisPassword must NOT have more than 0 characters/],
      ['an unknown top-level key', { replicas: 2 }, /\(top\) must NOT have additional properties/],
      ['a typo in a nested key', { redis: { mode: 'standalone', url: 'redis://r:6379', sentinal: [] } }, /\/redis must NOT have additional properties/],
      ['replicaCount as a string', { replicaCount: '2' }, /\/replicaCount must be integer/],
      ['an admin port out of range', { ports: { public: 4000, admin: 70000 } }, /\/ports\/admin must be <= 65535/],
      ['an unknown Redis mode', { redis: { mode: 'memcached' } }, /\/redis\/mode must be equal to one of the allowed values/],
      ['standalone without a URL', { redis: { mode: 'standalone' } }, /\/redis\/url must NOT have fewer than 1 characters/],
      ['sentinel without sentinels', { redis: { mode: 'sentinel', sentinelName: 'mymaster' } }, /\/redis\/sentinels must NOT have fewer than 1 items/],
      ['a sentinel address without a port', { redis: { mode: 'sentinel', sentinels: ['sentinel-0'], sentinelName: 'm' } }, /\/redis\/sentinels\/0 must match pattern/],
      ['an issuer that is not a URL', { issuer: 'auth.example.com' }, /\/issuer must match pattern/],
      ['a short cookie key', { secrets: { cookieKeys: ['short'] } }, /\/secrets\/cookieKeys\/0 must NOT have fewer than 32 characters/],
      ['root in the container', { securityContext: { runAsNonRoot: false } }, /\/securityContext\/runAsNonRoot must be equal to constant/],
      ['the issuer in the config file (the chart sets it)', { config: { issuer: 'https://x.example.com' } }, /\/config must NOT be valid/],
      ['an unknown secret key', { secrets: { existingSecret: 's', existingSecretKeys: ['tls.key'] } }, /\/secrets\/existingSecretKeys\/0 must match pattern/],
    ];
    for (const [what, over, pattern] of refused) {
      const errors = errorsOf(merge(defaults, over));
      assert.ok(errors.some((e) => pattern.test(e)), `${what}: ${errors.join('; ') || 'accepted'}`);
    }
    // and the same counts are fine on Redis
    assert.deepEqual(errorsOf(merge(defaults, { replicaCount: 2, autoscaling: { enabled: true }, redis: { mode: 'standalone', url: 'redis://r:6379/0' } })), []);
  });
});

describe('templates (structure, without helm)', () => {
  const files = templateFiles();
  // a file that cannot be read as actions fails the test below, by name
  const parsed = files.flatMap((file) => {
    try {
      return [{ file: file.slice(CHART.length + 1), list: actions(readFileSync(file, 'utf8'), file) }];
    } catch {
      return [];
    }
  });

  it('has the expected layout', () => {
    const names = parsed.map((p) => p.file).sort();
    for (const name of [
      'templates/_helpers.tpl',
      'templates/deployment.yaml',
      'templates/service-public.yaml',
      'templates/service-admin.yaml',
      'templates/ingress.yaml',
      'templates/configmap.yaml',
      'templates/secret.yaml',
      'templates/pvc.yaml',
      'templates/pdb.yaml',
      'templates/hpa.yaml',
      'templates/networkpolicy.yaml',
      'templates/servicemonitor.yaml',
      'templates/serviceaccount.yaml',
      'templates/tests/test-discovery.yaml',
      'templates/NOTES.txt',
    ]) {
      assert.ok(names.includes(name), `${name} missing`);
    }
  });

  it('every file has balanced actions and blocks, and includes only defined templates', () => {
    for (const file of files) assert.doesNotThrow(() => actions(readFileSync(file, 'utf8'), file));
    const defined = new Set(parsed.flatMap(({ file, list }) => checkBlocks(list, file)));
    assert.ok(defined.has('mcp-authz.fullname') && defined.has('mcp-authz.validate'));
    for (const { file, list } of parsed) {
      for (const { name, line } of includes(list)) assert.ok(defined.has(name), `${file}:${line}: include "${name}" is not defined`);
    }
  });

  it('reads only values that values.yaml declares', () => {
    for (const { file, list } of parsed) {
      for (const { path, line } of valuesPaths(list)) {
        let at: unknown = defaults;
        for (const key of path) {
          assert.ok(isMap(at) && key in at, `${file}:${line}: .Values.${path.join('.')} is not in values.yaml`);
          at = (at as Values)[key];
        }
      }
    }
  });

  it('refuses more than one replica or autoscaling without Redis, and requires the issuer', () => {
    const validate = readFileSync(join(TEMPLATES, '_helpers.tpl'), 'utf8');
    assert.match(validate, /gt \(int \.Values\.replicaCount\) 1 -\}\}\s*\{\{- fail "replicaCount > 1 needs Redis/);
    assert.match(validate, /if \.Values\.autoscaling\.enabled -\}\}\s*\{\{- fail "autoscaling\.enabled needs Redis/);
    const deployment = readFileSync(join(TEMPLATES, 'deployment.yaml'), 'utf8');
    assert.match(deployment, /^\{\{- include "mcp-authz\.validate" \. \}\}/);
    assert.match(deployment, /required "issuer is required[^"]*" \.Values\.issuer/);
  });

  it('Chart.yaml appVersion is the package version', () => {
    const chart = readYaml(join(CHART, 'Chart.yaml'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(chart.apiVersion, 'v2');
  });
});

const helm = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
const hasHelm = !helm.error && helm.status === 0;
const noHelm = hasHelm ? false : 'no `helm` binary on PATH: helm lint is not run here';

/**
 * Without helm, test/deploy/render/main.go renders the chart with the engine helm uses (Go
 * text/template + sprig) where Go and Debian's sprig sources are installed (apt-get install
 * golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev).
 */
const GO_ENV = { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOFLAGS: '' };
function buildGoRenderer(): string | undefined {
  if (hasHelm) return undefined;
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.error || go.status !== 0) return undefined;
  const out = join(mkdtempSync(join(tmpdir(), 'mcp-authz-render-')), 'render');
  const source = join(ROOT, 'test/deploy/render');
  const build = spawnSync('go', ['build', '-o', out, '.'], { cwd: source, env: GO_ENV, encoding: 'utf8', timeout: 90_000 });
  return build.status === 0 ? out : undefined;
}
const goRenderer = buildGoRenderer();
const noRenderer =
  hasHelm || goRenderer
    ? false
    : 'neither `helm` nor Go with the sprig sources (golang-go, golang-github-masterminds-sprig-dev, golang-gopkg-yaml.v3-dev) here: the chart is not rendered';

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: Values;
}

function render(valueFiles: string[], set: string[] = []): { status: number | null; stderr: string; objects: K8sObject[] } {
  const options = [...valueFiles.flatMap((f) => ['-f', f]), ...set.flatMap((s) => ['--set', s])];
  const run = hasHelm
    ? spawnSync('helm', ['template', 'auth', CHART, ...options], { encoding: 'utf8', timeout: 30_000 })
    : spawnSync(goRenderer!, [CHART, ...options], { encoding: 'utf8', timeout: 30_000 });
  const objects = run.status === 0 ? parseAllDocuments(run.stdout).map((d) => d.toJS() as K8sObject).filter(Boolean) : [];
  return { status: run.status, stderr: run.stderr, objects };
}

describe('helm lint', { skip: noHelm }, () => {
  it('lints with every example', () => {
    for (const name of examples) {
      const run = spawnSync('helm', ['lint', '--strict', CHART, '-f', join(EXAMPLES, name)], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(run.status, 0, `${name}: ${run.stdout}${run.stderr}`);
    }
  });
});

describe(`the chart rendered (${hasHelm ? 'helm template' : 'Go text/template + sprig, test/deploy/render'})`, { skip: noRenderer }, () => {
  const example = (name: string) => join(EXAMPLES, name);

  it('SQLite: one replica, a PVC, probes on the admin port, hardened container, admin port kept private', () => {
    const { status, stderr, objects } = render([example('sqlite-single.yaml')]);
    assert.equal(status, 0, stderr);
    const kinds = objects.map((o) => o.kind);
    assert.ok(kinds.includes('PersistentVolumeClaim'));
    assert.ok(!kinds.includes('HorizontalPodAutoscaler') && !kinds.includes('PodDisruptionBudget'));
    const deployment = objects.find((o) => o.kind === 'Deployment')! as unknown as { spec: { replicas: number; strategy: { type: string }; template: { spec: any } } };
    assert.equal(deployment.spec.replicas, 1);
    assert.equal(deployment.spec.strategy.type, 'Recreate');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0];
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/healthz', port: 'admin' });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/readyz', port: 'admin' });
    assert.equal(container.ports.find((p: { name: string }) => p.name === 'admin').containerPort, 9464);
    assert.equal(container.env.find((e: { name: string }) => e.name === 'ADMIN_HOST').value, '0.0.0.0');
    assert.equal(container.env.find((e: { name: string }) => e.name === 'ISSUER').value, 'https://auth.example.com');
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.runAsNonRoot, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    assert.ok(pod.volumes.some((v: { name: string; emptyDir?: object }) => v.name === 'tmp' && v.emptyDir));
    assert.deepEqual(container.lifecycle.preStop.exec.command, ['sleep', '5']);
    assert.equal(container.env.find((e: { name: string }) => e.name === 'SHUTDOWN_GRACE_PERIOD').value, '20');
    assert.ok(pod.terminationGracePeriodSeconds > 5 + 20);
    const publicService = objects.find((o) => o.kind === 'Service' && !o.metadata.name.endsWith('-admin'))!;
    assert.deepEqual((publicService.spec!.ports as { targetPort: string }[]).map((p) => p.targetPort), ['http']);
    const ingress = objects.find((o) => o.kind === 'Ingress')!;
    assert.doesNotMatch(JSON.stringify(ingress), /admin/);
  });

  it('Redis: N replicas, no PVC, PDB and HPA, Redis env and secret files', () => {
    const { status, stderr, objects } = render([example('redis-replicas.yaml')]);
    assert.equal(status, 0, stderr);
    const kinds = objects.map((o) => o.kind);
    assert.ok(!kinds.includes('PersistentVolumeClaim'));
    for (const kind of ['PodDisruptionBudget', 'HorizontalPodAutoscaler', 'Secret', 'NetworkPolicy', 'ServiceMonitor']) assert.ok(kinds.includes(kind), kind);
    const env = JSON.stringify(objects.find((o) => o.kind === 'Deployment'));
    for (const name of ['REDIS_URL', 'REDIS_PASSWORD_FILE', 'COOKIE_KEYS_FILE']) assert.match(env, new RegExp(name));
  });

  it('Sentinel, Cluster and an existing Secret: their environment, no Secret rendered, the Secret\'s listed keys mounted', () => {
    const env = (objects: K8sObject[]) =>
      Object.fromEntries(
        ((objects.find((o) => o.kind === 'Deployment') as any).spec.template.spec.containers[0].env as { name: string; value?: string }[]).map((e) => [e.name, e.value]),
      );
    const sentinel = render([example('redis-sentinel.yaml')]);
    assert.equal(sentinel.status, 0, sentinel.stderr);
    assert.equal(env(sentinel.objects).REDIS_SENTINELS, 'redis-node-0.redis-headless.redis.svc:26379,redis-node-1.redis-headless.redis.svc:26379,redis-node-2.redis-headless.redis.svc:26379');
    assert.equal(env(sentinel.objects).REDIS_SENTINEL_NAME, 'mymaster');
    assert.equal(env(sentinel.objects).REDIS_URL, undefined);
    const cluster = render([example('redis-cluster.yaml')]);
    assert.equal(cluster.status, 0, cluster.stderr);
    assert.match(env(cluster.objects).REDIS_CLUSTER_NODES!, /^redis-cluster-0\S+:6379,redis-cluster-1\S+,redis-cluster-2\S+$/);
    assert.equal(env(cluster.objects).REDIS_TLS, 'true');

    const existing = render([example('existing-secret.yaml')]);
    assert.equal(existing.status, 0, existing.stderr);
    assert.ok(!existing.objects.some((o) => o.kind === 'Secret'), 'the chart makes no Secret');
    const e = env(existing.objects);
    assert.equal(e.COOKIE_KEYS_FILE, '/etc/mcp-authz/secrets/cookie-keys');
    assert.equal(e.SIGNING_KEYS_FILE, '/etc/mcp-authz/secrets/signing-keys.json');
    assert.equal(e.REDIS_PASSWORD_FILE, '/etc/mcp-authz/secrets/redis-password');
    const volume = ((existing.objects.find((o) => o.kind === 'Deployment') as any).spec.template.spec.volumes as any[]).find((v) => v.name === 'secrets');
    assert.equal(volume.secret.secretName, 'mcp-authz-secrets');
    assert.deepEqual(volume.secret.items.map((i: { key: string }) => i.key), ['cookie-keys', 'signing-keys.json', 'redis-password', 'client-nightly-report']);

    // connection secrets (secrets.files) are files of the chart's Secret, named in the config
    const enterprise = render([example('enterprise-sign-in.yaml')]);
    assert.equal(enterprise.status, 0, enterprise.stderr);
    const files = enterprise.objects.find((o) => o.kind === 'Secret') as unknown as { data: Record<string, string> };
    assert.equal(Buffer.from(files.data['file-ad-bind-password']!, 'base64').toString(), 'change-me-the-service-account-password');
    const mounted = ((enterprise.objects.find((o) => o.kind === 'Deployment') as any).spec.template.spec.volumes as any[]).find((v) => v.name === 'secrets');
    assert.deepEqual(mounted.secret.items.map((i: { key: string }) => i.key), ['file-ad-bind-password', 'file-entra-client-secret']);
    const configMap = enterprise.objects.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
    assert.match(Object.values(configMap.data).join('\n'), /bindPassword:\s*\n?\s*file: \/etc\/mcp-authz\/secrets\/file-ad-bind-password/);

    // the chart's own Secret: cookie keys one per line, newest first
    const signing = join(mkdtempSync(join(tmpdir(), 'mcp-authz-values-')), 'signing.yaml');
    writeFileSync(signing, `secrets:\n  signingKeys: '{"keys":[]}'\n`);
    const own = render([example('redis-replicas.yaml'), signing]);
    assert.equal(own.status, 0, own.stderr);
    const secret = own.objects.find((o) => o.kind === 'Secret') as unknown as { data: Record<string, string> };
    assert.equal(Buffer.from(secret.data['cookie-keys']!, 'base64').toString(), 'change-me-to-a-random-cookie-key-of-43-chars\n');
    assert.equal(Buffer.from(secret.data['signing-keys.json']!, 'base64').toString(), '{"keys":[]}');
    assert.equal(env(own.objects).SIGNING_KEYS_FILE, '/etc/mcp-authz/secrets/signing-keys.json');
    // nothing secret in the ConfigMap
    assert.doesNotMatch(JSON.stringify(own.objects.find((o) => o.kind === 'ConfigMap')), /change-me/);
  });

  it('without secrets: no Secret, no secrets volume, no *_FILE variable (the server keeps them in the store)', () => {
    const { status, stderr, objects } = render([example('sqlite-single.yaml')]);
    assert.equal(status, 0, stderr);
    assert.ok(!objects.some((o) => o.kind === 'Secret'));
    const deployment = JSON.stringify(objects.find((o) => o.kind === 'Deployment'));
    assert.doesNotMatch(deployment, /_FILE|"secrets"/);
  });

  it('renders every example into well-formed objects, and refuses two replicas or autoscaling on SQLite, and a missing issuer', () => {
    for (const name of examples) {
      const { status, stderr, objects } = render([example(name)]);
      assert.equal(status, 0, `${name}: ${stderr}`);
      for (const o of objects) assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${name}: ${JSON.stringify(o).slice(0, 200)}`);
      const deployment = objects.find((o) => o.kind === 'Deployment');
      assert.ok(deployment, name);
    }
    const two = render([example('sqlite-single.yaml')], ['replicaCount=2']);
    assert.notEqual(two.status, 0);
    assert.match(two.stderr, /replicaCount|needs Redis/);
    assert.notEqual(render([example('sqlite-single.yaml')], ['autoscaling.enabled=true']).status, 0);
    const mixed = render([example('existing-secret.yaml')], ['secrets.redisPassword=x']);
    assert.notEqual(mixed.status, 0);
    assert.match(mixed.stderr, /secrets\.existingSecret is set/);
    const short = render([example('sqlite-single.yaml')], ['terminationGracePeriodSeconds=25']);
    assert.notEqual(short.status, 0);
    assert.match(short.stderr, /terminationGracePeriodSeconds must be more than/);
    const noIssuer = render([]);
    assert.notEqual(noIssuer.status, 0);
    assert.match(noIssuer.stderr, /issuer is required/);
  });
});
