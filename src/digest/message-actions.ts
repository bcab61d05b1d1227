import { parseSender } from '../senders/forms.ts';

/**
 * The one-click actions an owner is offered for one quarantined message, in the order shown: the
 * single place the digest and the action pages ask (a per-content-type release policy filters here).
 */
export type MessageVerb = 'release' | 'release_allow' | 'request' | 'delete';

export interface MessageAction {
  action: MessageVerb;
  /** shown as a destructive button, set apart from release */
  danger: boolean;
}

export interface ActionSubject {
  /** the envelope sender as amavisd stored it; '' is the null sender <> */
  sender: string;
  /** amavisd's content code (S, V, B, ...) */
  contentCode: string;
}

/**
 * Whether "always allow sender" can mean anything: the null sender <> (bounces, automatic replies)
 * and sender forms that are not an address cannot be put on a sender list (src/quarantine/target.ts).
 */
export function senderCanBeAllowed(sender: string): boolean {
  if (sender === '') return false;
  const form = parseSender(sender);
  return !!form && form.key.includes('@') && !form.key.startsWith('@');
}

/** `allowed`: what the owner's release policy lets them do with this message (src/quarantine/release-policy.ts ownerActions); absent: everything. */
export function messageActions(m: ActionSubject, allowed?: ReadonlySet<string>): MessageAction[] {
  const may = (a: MessageVerb) => !allowed || allowed.has(a);
  const out: MessageAction[] = [];
  if (may('release')) out.push({ action: 'release', danger: false });
  if (may('release_allow') && senderCanBeAllowed(m.sender)) out.push({ action: 'release_allow', danger: false });
  if (may('request')) out.push({ action: 'request', danger: false });
  if (may('delete')) out.push({ action: 'delete', danger: true });
  return out;
}
