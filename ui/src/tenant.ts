/** The tenant the UI reads as (sent as ``X-Scope-OrgID``), kept in the browser's storage; empty
 * when the server needs none (single-tenant, or a credential that names one tenant). */

const KEY = "threadline.tenant";

/** Sent on ``window`` when the server answered that a request must name a tenant. */
export const TENANT_NEEDED = "threadline:tenant-needed";

export function tenant(): string {
  return localStorage.getItem(KEY) ?? "";
}

export function setTenant(name: string): void {
  if (name.trim()) localStorage.setItem(KEY, name.trim());
  else localStorage.removeItem(KEY);
}

/** Whether a server's error message asks for a tenant (Tempo's "no org id" answers). */
export function asksForTenant(message: string): boolean {
  return /no org id|X-Scope-OrgID/i.test(message);
}
