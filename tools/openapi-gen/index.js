// openapi-typescript imports `typescript` and needs its version 5 compiler API; the project
// compiles with TypeScript 7, which has none. As a workspace of its own, this package gets
// both installed under its node_modules, and what imports it gets openapi-typescript
// bound to TypeScript 5 while everything else keeps 7. createConfig is the Redocly
// linter's, the copy openapi-typescript validates with.
export { createConfig } from '@redocly/openapi-core';
export { astToString, default as openapiTS } from 'openapi-typescript';
