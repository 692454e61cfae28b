/** The UI's pages by path (routes below), the header, and ``navigate`` for in-page links. */

import { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ComparePage } from "./pages/ComparePage";
import { DifferencesPage } from "./pages/DifferencesPage";
import { TenantPicker } from "./components/TenantPicker";
import { LogsPage } from "./pages/LogsPage";
import { SearchPage } from "./pages/SearchPage";
import { ServicePage } from "./pages/ServicePage";
import { ServicesPage } from "./pages/ServicesPage";
import { TracePage } from "./pages/TracePage";

export function navigate(path: string) {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** A link that moves within the UI without reloading the page (a new tab still works). */
export function Link({ href, children, ...rest }: { href: string; children: ComponentChildren } & Record<string, unknown>) {
  return (
    <a
      href={href}
      {...rest}
      onClick={(e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}

type Route = [RegExp, (match: RegExpExecArray, location: string) => preact.JSX.Element];

/** Path patterns, first match wins; the last one is search. */
const ROUTES: Route[] = [
  [/^\/trace\/([0-9a-fA-F]+)\/?$/, (m) => <TracePage id={m[1]} />],
  [/^\/compare\/([0-9a-fA-F]+)\/([0-9a-fA-F]+)\/?$/, (m) => <ComparePage a={m[1]} b={m[2]} />],
  [/^\/compare(?:\/([0-9a-fA-F]+))?\/?$/, (m, location) => <ComparePage a={m[1]} b={new URLSearchParams(location.split("?")[1]).get("b") ?? undefined} />],
  [/^\/services\/?$/, (_m, location) => <ServicesPage location={location} />],
  [/^\/services\/([^/]+)\/?$/, (m, location) => <ServicePage name={decodeURIComponent(m[1])} location={location} />],
  [/^\/differences\/?$/, (_m, location) => <DifferencesPage location={location} />],
  [/^\/logs\/?$/, (_m, location) => <LogsPage location={location} />],
  [/^.*$/, (_m, location) => <SearchPage location={location} />],
];

const NAV: [string, string][] = [["/search", "Search"], ["/compare/", "Compare"], ["/services", "Services"], ["/logs", "Logs"]];

export function App() {
  const [location, setLocation] = useState(window.location.pathname + window.location.search);
  useEffect(() => {
    const update = () => setLocation(window.location.pathname + window.location.search);
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  const path = location.split("?")[0];
  let page: preact.JSX.Element | null = null;
  for (const [pattern, render] of ROUTES) {
    const m = pattern.exec(path);
    if (m) {
      page = render(m, location);
      break;
    }
  }
  return (
    <div class="app">
      <header class="top">
        <Link class="brand" href="/">
          threadline
        </Link>
        <nav>
          {NAV.map(([href, label]) => (
            <Link href={href} class={path.startsWith(href) ? "active" : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <TenantPicker />
      </header>
      <main>{page}</main>
    </div>
  );
}
