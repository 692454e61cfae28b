/** The UI's pages by path: search at / (and /search), a trace at /trace/<id>. */

import { useEffect, useState } from "preact/hooks";
import { SearchPage } from "./pages/SearchPage";
import { TracePage } from "./pages/TracePage";

export function navigate(path: string) {
  history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function App() {
  const [location, setLocation] = useState(window.location.pathname + window.location.search);
  useEffect(() => {
    const update = () => setLocation(window.location.pathname + window.location.search);
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  const path = location.split("?")[0];
  const trace = /^\/trace\/([0-9a-fA-F]+)/.exec(path);
  return (
    <div class="app">
      <header class="top">
        <a class="brand" href="/" onClick={(e) => (e.preventDefault(), navigate("/"))}>
          threadline
        </a>
        <nav>
          <a href="/search" onClick={(e) => (e.preventDefault(), navigate("/search"))}>
            Search
          </a>
        </nav>
      </header>
      <main>{trace ? <TracePage id={trace[1]} /> : <SearchPage location={location} />}</main>
    </div>
  );
}
