import type { TestProject } from 'vitest/node';
import { VARIANTS, createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';

/** One fresh database per amavisd schema variant for the whole run (per project), named for this run only. */
export default async function setup(project: TestProject) {
  // per project: the gateway files' project has databases of its own (vitest.config.ts)
  const suffix = runSuffix(project.name === 'integration-gateways' ? 'ig' : 'it');
  const urls: Record<string, string> = {};
  for (const v of VARIANTS) urls[v] = await createVariantDatabase(v, { suffix });
  project.provide('variantUrls', urls);
  project.provide('runSuffix', suffix);
  return async () => {
    for (const v of VARIANTS) await dropVariantDatabase(v, { suffix });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    variantUrls: Record<string, string>;
    /** a suffix for databases a test makes itself (see runSuffix) */
    runSuffix: string;
  }
}
