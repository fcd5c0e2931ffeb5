/**
 * Runs the built CLI (`mcp-authz ARGS`) in a child process, as an operator would: no config
 * variables from the test's environment but `DATA_DIR`, `stdin` piped in, killed after 20 s.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const CONFIG_VARIABLES = [
  'PORT',
  'HOST',
  'ISSUER',
  'REDIS_URL',
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_NAME',
  'REDIS_CLUSTER_NODES',
  'REDIS_PASSWORD',
  'REDIS_PASSWORD_FILE',
  'REDIS_TLS',
  'LOG_LEVEL',
  'TRUST_PROXY',
  'ADMIN_PORT',
  'ADMIN_HOST',
  'MCP_AUTHZ_CONFIG',
];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  dataDir: string;
  /** passed as `--config FILE` before the arguments */
  configFile?: string;
  stdin?: string;
}

export function runCli(args: string[], { dataDir, configFile, stdin = '' }: CliOptions): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of CONFIG_VARIABLES) delete env[name];
  env.DATA_DIR = dataDir;
  const argv = configFile === undefined ? args : ['--config', configFile, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill(), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the CLI may exit before reading stdin
    child.stdin.end(stdin);
  });
}
