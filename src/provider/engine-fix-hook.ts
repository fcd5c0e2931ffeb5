/**
 * Registers the module hook of src/provider/engine-fix.ts, once a process: from then on
 * oidc-provider loads with our one fix. It must run before anything imports the engine (the
 * command line registers it just before it loads the server); where the engine is loaded
 * already, the hook changes nothing.
 */
import { register } from 'node:module';

let registered = false;

export function registerEngineFix(): void {
  if (registered) return;
  registered = true;
  register('./engine-fix.js', import.meta.url);
}
