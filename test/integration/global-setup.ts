import type { TestProject } from 'vitest/node';
import { VARIANTS, createVariantDatabase } from '../support/databases.ts';

/** One fresh database per amavisd schema variant for the whole run. */
export default async function setup(project: TestProject) {
  const urls: Record<string, string> = {};
  for (const v of VARIANTS) urls[v] = await createVariantDatabase(v);
  project.provide('variantUrls', urls);
}

declare module 'vitest' {
  export interface ProvidedContext {
    variantUrls: Record<string, string>;
  }
}
