/**
 * The name of the endpoint a request path belongs to, for metrics labels: a fixed list, so a
 * path with an id in it (`/interaction/<uid>`, `/device/<code>`) or a path nobody serves never
 * makes a label of its own. Paths are the engine's defaults (src/provider/configuration.ts
 * changes registration only) and our own routes, below the issuer's path.
 */
const ENDPOINTS: [RegExp, string][] = [
  [/^\/token$/, 'token'],
  [/^\/token\/introspection$/, 'introspection'],
  [/^\/token\/revocation$/, 'revocation'],
  [/^\/auth(\/[^/]+)?$/, 'authorization'],
  [/^\/request$/, 'par'],
  [/^\/device\/auth$/, 'device_authorization'],
  [/^\/device(\/.*)?$/, 'device_verification'],
  [/^\/register(\/[^/]+)?$/, 'registration'],
  [/^\/jwks$/, 'jwks'],
  [/^\/me$/, 'userinfo'],
  [/^\/session\/end(\/.*)?$/, 'end_session'],
  [/^\/\.well-known\/(openid-configuration|oauth-authorization-server)(\/.*)?$/, 'discovery'],
  [/^\/\.well-known\/oauth-protected-resource(\/.*)?$/, 'resource_metadata'],
  [/^\/interaction\/[^/]+(\/[a-z]+)?$/, 'interaction'],
  [/^\/account\/apps(\/.*)?$/, 'connected_apps'],
  [/^\/revocations$/, 'revocation_feed'],
  [/^\/tool-approvals$/, 'tool_approvals'],
  [/^\/approvals\/[^/]+$/, 'approval_page'],
  [/^\/healthz$/, 'health'],
  [/^\/static\//, 'static'],
  [/^\/(demo|setup)(\/.*)?$/, 'demo'],
];

/** `endpointName('/interaction/abc/login')` → `interaction`; anything unknown → `other`. */
export function endpointName(path: string, basePath = ''): string {
  if (basePath) {
    if (path !== basePath && !path.startsWith(`${basePath}/`)) return 'other';
    path = path.slice(basePath.length) || '/';
  }
  for (const [pattern, name] of ENDPOINTS) if (pattern.test(path)) return name;
  return 'other';
}
