/**
 * How a release reaches amavisd: straight to its AM.PDP port (Node beside amavisd), through the
 * on-host relay (Workers), or the demo's sandbox peer. The verb only sees this interface.
 */
export interface ReleaseRequest {
  partitionTag: number;
  mailId: string;
  /** the release credential; never leaves the server except towards amavisd */
  secretId: string;
  /** envelope recipients to release to; each one of the mail's own */
  recipients: string[];
  /** the acting identity, for amavisd's log */
  requestedBy: string;
}

export interface ReleaseReply {
  /** every `setreply=` value, decoded, in the order amavisd sent them */
  setreplies: string[];
  /** all attributes of the reply, decoded */
  attributes: Array<[string, string]>;
  /** released only when every setreply is 2xx and none is "2.5.0 No recipients" */
  released: boolean;
  /** which transport answered ('direct' | 'relay' | 'sandbox') */
  via: string;
}

export interface ReleaseTransport {
  readonly kind: 'direct' | 'relay' | 'sandbox';
  /**
   * Resolves with amavisd's decoded answer (success or refusal). Rejects with
   * AppError('upstream_unreachable') when amavisd or the relay could not be reached or the reply
   * was cut short: then nothing is known to have been delivered.
   */
  release(req: ReleaseRequest): Promise<ReleaseReply>;
}
