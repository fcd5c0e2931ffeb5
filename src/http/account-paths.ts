/** Where a signed-in person's own pages live, below the issuer's path; they link to each other. */
export const CONNECTED_APPS_PATH = '/account/apps';
export const ACCOUNT_SECURITY_PATH = '/account/security';
/** A tool-call approval request's page (src/tool-approvals): `/approvals/<id>`. */
export const APPROVALS_PATH = '/approvals';
