/** The tenant picker in the header: shown once a tenant is chosen or the server asks for one;
 * choosing reloads the page so that everything on it is read as that tenant. */

import { useEffect, useState } from "preact/hooks";
import { TENANT_NEEDED, setTenant, tenant } from "../tenant";

export function TenantPicker() {
  const [needed, setNeeded] = useState(tenant() !== "");
  const [value, setValue] = useState(tenant());
  useEffect(() => {
    const ask = () => setNeeded(true);
    addEventListener(TENANT_NEEDED, ask);
    return () => removeEventListener(TENANT_NEEDED, ask);
  }, []);
  if (!needed) return null;
  return (
    <form
      class="tenant-picker"
      data-testid="tenant-picker"
      onSubmit={(e) => {
        e.preventDefault();
        setTenant(value);
        location.reload();
      }}
    >
      <label>
        Tenant
        <input
          data-testid="tenant"
          placeholder="X-Scope-OrgID"
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Use</button>
    </form>
  );
}
