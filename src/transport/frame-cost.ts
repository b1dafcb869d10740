import type { ClientFrame, ClientFrameType } from '../protocol/frames.js';

/** The client frames whose type may be `T` (a frame interface may serve several types). */
type FrameOf<T extends ClientFrameType> = ClientFrame extends infer F ? (F extends { t: infer U } ? (T extends U ? F : never) : never) : never;
type Cost<T extends ClientFrameType> = number | ((f: FrameOf<T>) => number);

/** Group changes are journaled and fan a system message out to every member (up to 1,024). */
const GROUP_CHANGE = 50;

/**
 * What each client frame costs, in units taken from its device's budget (PARLEY_FRAME_COST_PER_S / _BURST),
 * on top of the socket's frame rate. A cost follows the work the node does for the frame: store reads,
 * entities woken, frames fanned out. 0: the frame is cheap, or has a budget of its own (`send`: the sender's
 * fan-out budget, in the conversation entity). Every frame type is listed, so a new one needs a decision.
 */
export const FRAME_COSTS: { [T in ClientFrameType]: Cost<T> } = {
  send: 0,
  ack: 0,
  read: 0,
  typing: 0, // its fan-out is charged to the sender's fan-out budget
  ping: 0,
  // A store read of up to a page (1,000 entries); resends are also charged to the device's resend budget.
  sync: 10,
  // A store read of up to `limit` messages.
  history: (f) => 1 + Math.ceil((f.limit || 50) / 50),
  // Every member's cursors: up to 1,024 in a group.
  receipts: 2,
  // Each user named is an entity woken (and loaded from the store) on this node.
  'presence.sub': (f) => f.users.length,
  'presence.unsub': (f) => f.users.length,
  // Contact discovery: counted in phone numbers, not frames.
  'users.lookup': (f) => f.phones.length,
  'group.create': (f) => GROUP_CHANGE + (f.members?.length ?? 0),
  'group.add': (f) => GROUP_CHANGE + f.users.length,
  'group.remove': (f) => GROUP_CHANGE + f.users.length,
  'group.admin': GROUP_CHANGE,
  'group.rename': GROUP_CHANGE,
  'group.leave': GROUP_CHANGE,
  'group.info': 1,
  'profile.set': 1,
  'profile.get': 1,
  'settings.set': 1,
  'contacts.add': (f) => 1 + Math.ceil(f.users.length / 100),
  'contacts.remove': (f) => 1 + Math.ceil(f.users.length / 100),
  // A registration claims its token in the store's index (a lightweight transaction on Scylla).
  'push.register': 2,
  'push.unregister': 2,
  mute: 1,
  // The device list is one partition read; a sign-out deletes devices and their inboxes.
  'devices.list': 1,
  'devices.signout': GROUP_CHANGE,
  // The key directory: a write per package uploaded; a claim is a lightweight transaction per device, and
  // has a budget of its own per fetcher (src/e2e/key-directory.ts), as keys handed out can't be given back.
  'keys.publish': (f) => 1 + Math.ceil((f.oneTime?.length ?? 0) / 10),
  'keys.claim': (f) => f.users.length,
  'keys.list': (f) => f.users.length,
  'keys.count': 1,
};

/** The cost of one validated frame (see FRAME_COSTS). */
export function frameCost(f: ClientFrame): number {
  const c = FRAME_COSTS[f.t] as Cost<typeof f.t>;
  return typeof c === 'number' ? c : (c as (f: ClientFrame) => number)(f);
}
