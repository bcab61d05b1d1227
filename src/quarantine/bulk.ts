import { parseItemId } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { deleteMessage, type DeleteResult } from './delete.ts';
import { releaseMessage, type ReleaseResult } from './release.ts';

export interface BulkInput {
  action: 'release' | 'delete';
  ids: string[];
  allowSender?: boolean;
  blockSender?: boolean;
}

export interface BulkItemResult {
  id: string;
  status: number;
  result?: ReleaseResult | DeleteResult;
  error?: { code: string; detail: string };
}

/** amavisd runs few children: more parallel releases than this only queue up inside it. */
const CONCURRENCY = 4;

export async function runBulk(deps: Deps, who: Identity, input: BulkInput): Promise<BulkItemResult[]> {
  const ids = [...new Set(input.ids)];
  const out: BulkItemResult[] = new Array(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const id = ids[i]!;
      try {
        const key = parseItemId(id);
        if (!key) throw new AppError('invalid_field', 'not a quarantine id', { field: 'ids' });
        if (input.action === 'release') {
          const result = await releaseMessage(deps, who, { key, allowSender: input.allowSender });
          out[i] = { id, status: result.status === 'released' ? 200 : result.status === 'partial' ? 207 : 502, result };
        } else {
          out[i] = { id, status: 200, result: await deleteMessage(deps, who, { key, blockSender: input.blockSender }) };
        }
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        out[i] = { id, status: err.status, error: { code: err.code, detail: err.message } };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));
  return out;
}
