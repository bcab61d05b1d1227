import { parseSender } from '../senders/forms.ts';

/**
 * The one-click actions an owner is offered for one quarantined message, in the order shown: the
 * single place the digest and the action pages ask (a per-content-type release policy filters here).
 */
export type MessageVerb = 'release' | 'release_allow' | 'delete';

export interface MessageAction {
  action: MessageVerb;
  label: string;
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

export function messageActions(m: ActionSubject): MessageAction[] {
  const out: MessageAction[] = [{ action: 'release', label: 'Release', danger: false }];
  if (senderCanBeAllowed(m.sender)) out.push({ action: 'release_allow', label: 'Release and always allow sender', danger: false });
  out.push({ action: 'delete', label: 'Delete', danger: true });
  return out;
}
