import { z } from "zod";

// The server's Content-Security-Policy allows no eval. Zod compiles object parsers with `new Function` unless
// jitless, and its probe for eval is itself a CSP violation report. Object schemas read this flag when they are
// built, so this module is main.tsx's first import: it runs before core's schemas are defined.
z.config({ jitless: true });
