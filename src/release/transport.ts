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
  /**
   * amavisd's `requested_by`: it becomes the released copy's Resent-From, so it is a real address
   * of the gateway (RELEASE_FROM), never our actor name (that stays in our audit)
   */
  requestedBy: string;
  /** msgs.host: the amavisd host that quarantined it (src/release/routes.ts routes by it) */
  host?: string;
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
   * Resolves with amavisd's decoded answer (success or refusal). `beforeSend` runs once, after any
   * wait for a free AM.PDP slot and before a byte goes out (the verb records its attempt there);
   * when it throws, nothing is sent. Rejects with:
   *  - AppError('release_outcome_unknown') when the request may have reached amavisd but no
   *    complete answer came back (a timeout, a connection cut or reset after sending, the relay
   *    lost mid-request): amavisd may have delivered;
   *  - any other error only when nothing reached amavisd (refused, unreachable, busy, invalid).
   */
  release(req: ReleaseRequest, beforeSend?: () => Promise<void>): Promise<ReleaseReply>;
}
