#!/usr/bin/env node
// Runs the TypeScript CLI straight from a fresh clone (no build step): tsx compiles on load.
import { register } from 'tsx/esm/api';

register();
await import('../functions/cli.ts');
