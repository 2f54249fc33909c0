import "./zod-config.ts";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App, createAdmin } from "./App.tsx";
import { restoreSession } from "./session.ts";
import "./styles.css";

restoreSession();
// Before React's first render: the router's loader starts the page's queries while React mounts.
const admin = createAdmin();
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App {...admin} />
  </StrictMode>,
);
