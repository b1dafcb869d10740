#!/usr/bin/env node
import { createInterface } from 'node:readline';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { devCode, requestCode, verifyCode, type SessionInfo } from './accounts-api.js';
import { ParleyClient, SIGNED_OUT_CLOSE } from './parley-client.js';
import type { Message } from '../protocol/frames.js';

/**
 * A terminal chat on the SDK, so two people can talk from two terminals:
 *   npm run chat -- --phone +14155550123 [--url http://127.0.0.1:8080 [--url …]] [--api-key parley-dev-key] [--e2e 1]
 * With --e2e 1 (or PARLEY_E2E=1) messages are end-to-end encrypted (MLS) and /verify shows a safety number.
 * Several --url (or PARLEY_URL=a,b,c): nodes of one cluster; the chat fails over among them.
 * The session (token and inbox pointer) is kept in ~/.parley/, so a restart resumes where it left off.
 */
const HELP = `commands:
  /to <phone|user>              chat 1:1 (a phone number is looked up)
  /group new <name> <phone...>  create a group and chat in it
  /group add|remove <phone...>  manage the current group (admins)
  /group admin <phone>          make a member admin
  /group info | leave           about / leave the current group
  /open <conv>                  chat in a conversation by id
  /history [n]                  last n messages of the current chat
  /read                         mark the current chat read
  /presence <phone|user>        follow someone's online / last seen
  /name <display name>          set your profile name
  /lastseen everyone|contacts|nobody
  /contact <phone>              add to your contacts
  /where <lat> <lng> [name]     send a location
  /verify <phone|user>          the safety number you and they compare (end-to-end encryption)
  /devices                      your signed-in devices
  /signout [device|others|all]  sign out this terminal, another device, every other device, or all
  /whoami  /help  /quit
anything else is sent as text to the current chat`;

interface Saved extends SessionInfo { phone: string; ptr: number }

function arg(name: string, dflt?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : process.env[`PARLEY_${name.toUpperCase().replace(/-/g, '_')}`] ?? dflt;
}

/** Every `--name value` given (in order), else PARLEY_NAME split at commas, else the default. */
function argList(name: string, dflt: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => { if (a === `--${name}` && process.argv[i + 1]) out.push(process.argv[i + 1]!); });
  if (out.length) return out;
  const env = process.env[`PARLEY_${name.toUpperCase()}`];
  return env ? env.split(',').map((x) => x.trim()).filter(Boolean) : [dflt];
}

/** The first URL whose `call` succeeds (a node down is passed over); the last error if none does. */
async function firstAnswering(urls: string[], call: (url: string) => Promise<unknown>): Promise<string> {
  let last: unknown;
  for (const u of urls) {
    try {
      await call(u);
      return u;
    } catch (err) {
      last = err;
      // A refusal by the node (a bad number, rate limited) is the answer; only an unreachable node is passed over.
      if ((err as { status?: unknown }).status !== undefined) throw err;
    }
  }
  throw last;
}

async function main(): Promise<void> {
  const urls = argList('url', 'http://127.0.0.1:8080');
  const url = urls[0]!;
  const apiKey = arg('api-key', 'parley-dev-key')!;
  const phone = arg('phone');
  if (!phone) { console.log('usage: npm run chat -- --phone +14155550123 [--url URL ...]'); process.exit(2); }
  const dir = join(homedir(), '.parley');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${phone.replace(/\W/g, '')}-${new URL(url).port || 'default'}.json`);

  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const ask = (q: string) => new Promise<string>((res) => rl.question(q, res));
  const say = (s: string) => { process.stdout.write(`\r${s}\n`); rl.prompt(true); };

  let saved: Saved | undefined = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Saved) : undefined;
  if (!saved) {
    // Through the first node that answers; any node of a cluster serves accounts and its outboxes.
    const via = await firstAnswering(urls, (u) => requestCode(u, apiKey, phone));
    // On a dev node the code sits in its outbox; elsewhere it comes by SMS.
    const code = await devCode(via, phone).catch(() => ask(`code sent to ${phone}: `));
    saved = { ...(await verifyCode(via, apiKey, phone, code.trim(), { name: 'cli', platform: 'cli' })), phone, ptr: 0 };
    writeFileSync(file, JSON.stringify(saved), { mode: 0o600 });
  }
  const session = saved;
  // The device's MLS state (identity, keys, groups) beside the session: without it a restart is a new identity.
  const e2eFile = file.replace(/\.json$/, '.e2e');
  const e2eOn = arg('e2e') === '1';
  const client = new ParleyClient({ urls, token: session.token, ptr: session.ptr, e2e: e2eOn && (existsSync(e2eFile) ? { state: readFileSync(e2eFile) } : true) });
  let saving = Promise.resolve();
  /** After every send, receipt of a message and group change: a state older than a sent message would reuse its keys. */
  const persist = () => {
    if (!client.e2e) return saving;
    return (saving = saving.then(async () => writeFileSync(e2eFile, await client.e2e!.save(), { mode: 0o600 })).catch((err: unknown) => say(`  ⚠ encryption state not saved: ${String(err)}`)));
  };
  client.on('e2e', () => void persist());
  const names = new Map<string, string>([[session.user, 'me']]);
  let current: { to: string } | { conv: string } | undefined;
  let currentConv: string | undefined;
  let lastSeq = 0;

  const who = (u: string) => names.get(u) ?? u;
  const resolveUser = async (x: string) => {
    if (!x.startsWith('+')) return x;
    const { users } = await client.lookup([x]);
    if (!users[x]) throw new Error(`${x} has no Parley account`);
    names.set(users[x]!, x);
    return users[x]!;
  };
  const show = (m: Message) => {
    const body = m.body && !(m.body instanceof Uint8Array) ? (m.body as Record<string, unknown>) : undefined;
    const what = m.kind === 'text' ? String(body?.text)
      : m.kind === 'location' ? `📍 ${body?.lat},${body?.lng} ${body?.name ?? ''}`
      : m.kind === 'system' ? `* ${body?.event} ${((body?.users as string[]) ?? []).map(who).join(', ')} ${body?.name ?? ''}`
      : m.kind === 'delete' ? `(deleted #${m.target})`
      : `[${m.kind}] ${JSON.stringify(body ?? '')}`;
    say(`${m.conv.slice(0, 12)}… #${m.seq} ${who(m.from)}: ${what}`);
  };

  client.on('welcome', (w) => say(`connected as ${w.user} (${phone}) to ${client.url}; /help for commands`));
  client.on('message', (m, ptr) => {
    if ((m as { e2e?: boolean }).e2e) void persist();
    session.ptr = ptr;
    writeFileSync(file, JSON.stringify(session), { mode: 0o600 });
    show(m);
    if (!current && m.kind !== 'system') { current = { conv: m.conv }; currentConv = m.conv; } // reply to whoever wrote first
    if (m.conv === currentConv) { lastSeq = Math.max(lastSeq, m.seq); client.read(m.conv, m.seq); }
  });
  client.on('receipt', (r) => say(`  ${r.status === 'read' || r.status === 'read_all' ? '✓✓ read' : '✓✓ delivered'}${r.status.endsWith('_all') ? ' by all' : r.user ? ` by ${who(r.user)}` : ''} up to #${r.upTo}`));
  client.on('undecryptable', (m, reason) => say(`  ⚠ a message from ${who(m.from)} in ${m.conv.slice(0, 12)}… could not be decrypted (${reason})`));
  client.on('typing', (t) => say(`  ${who(t.user)} ${t.on ? 'is typing…' : 'stopped typing'}`));
  client.on('presence', (p) => say(`  ${who(p.user)} is ${p.online ? 'online' : p.lastSeen ? `offline, last seen ${new Date(p.lastSeen).toLocaleString()}` : 'offline'}`));
  client.on('error', (e) => say(`! ${e.code}: ${e.message}`));
  client.on('close', (code, reason) => { if (code !== SIGNED_OUT_CLOSE) say(`(disconnected ${code} ${reason}; reconnecting)`); });
  client.on('deviceAdded', (d, at) => say(`* new device signed in: ${d.name} (${d.platform}) ${d.id}, ${new Date(at).toLocaleString()}`));
  client.on('deviceRemoved', (d) => say(`* device signed out: ${d.name} (${d.platform}) ${d.id}`));
  client.on('token', (token) => { session.token = token; writeFileSync(file, JSON.stringify(session), { mode: 0o600 }); });
  client.on('signedOut', () => {
    rmSync(file, { force: true }); // the saved token is dead
    rmSync(e2eFile, { force: true }); // and so is the device's encryption state
    say('this device was signed out; run again to sign in');
    process.exit(0);
  });
  await client.connect();

  rl.setPrompt('> ');
  rl.prompt();
  rl.on('line', (line) => {
    void command(line.trim()).catch((e: Error) => say(`! ${e.message}`)).finally(() => rl.prompt());
  });
  rl.on('close', () => { client.close(); process.exit(0); });

  async function command(line: string): Promise<void> {
    if (!line) return;
    if (!line.startsWith('/')) {
      if (!current) return say('pick a chat first: /to <phone> or /group new …');
      const sent = await client.text(current, line);
      await persist();
      currentConv = sent.conv;
      return say(`  ✓ sent #${sent.seq}`);
    }
    const [cmd, ...rest] = line.split(/\s+/);
    switch (cmd) {
      case '/help': return say(HELP);
      case '/quit': rl.close(); return;
      case '/whoami': return say(`${session.user} (${phone}), device ${session.device}`);
      case '/verify': {
        if (!client.e2e) return say('end-to-end encryption is off (start with --e2e 1)');
        const user = await resolveUser(rest[0] ?? '');
        return say(`safety number with ${who(user)} (compare it with theirs; it changes when a device key does):\n  ${await client.safetyNumber(user)}`);
      }
      case '/to': {
        const user = await resolveUser(rest[0] ?? '');
        current = { to: user };
        currentConv = undefined;
        return say(`chatting with ${who(user)}`);
      }
      case '/open': current = { conv: rest[0]! }; currentConv = rest[0]; return say(`chatting in ${rest[0]}`);
      case '/group': {
        const [sub, ...xs] = rest;
        const gid = currentConv?.startsWith('g.') ? currentConv.slice(2) : undefined;
        if (sub === 'new') {
          const members = await Promise.all(xs.slice(1).map(resolveUser));
          const g = await client.createGroup(xs[0] ?? 'group', members);
          current = { conv: g.conv }; currentConv = g.conv;
          return say(`group ${g.name} (${g.id}) with ${g.members.length} members`);
        }
        if (!gid) return say('open a group first');
        if (sub === 'add' || sub === 'remove') {
          const users = await Promise.all(xs.map(resolveUser));
          await (sub === 'add' ? client.addMembers(gid, users) : client.removeMembers(gid, users));
          return;
        }
        if (sub === 'admin') { await client.makeAdmin(gid, await resolveUser(xs[0] ?? '')); return; }
        if (sub === 'leave') { await client.leaveGroup(gid); current = undefined; return say('left'); }
        const g = await client.groupInfo(gid);
        return say(`${g.name}: ${g.members.map((m) => `${who(m.user)}${m.role === 'admin' ? ' (admin)' : ''}`).join(', ')}`);
      }
      case '/history': {
        if (!currentConv) return say('send or open a chat first');
        for (const m of await client.history(currentConv, { limit: Number(rest[0] ?? 20) })) show(m);
        return;
      }
      case '/read': if (currentConv) client.read(currentConv, lastSeq || Number.MAX_SAFE_INTEGER); return;
      case '/presence': client.subscribePresence([await resolveUser(rest[0] ?? '')]); return;
      case '/name': await client.setProfile({ name: rest.join(' ') }); return say('name set');
      case '/lastseen': await client.setLastSeenPrivacy(rest[0] as 'everyone'); return say(`last seen: ${rest[0]}`);
      case '/contact': await client.addContacts([await resolveUser(rest[0] ?? '')]); return say('added');
      case '/where': {
        if (!current) return say('pick a chat first');
        const [lat, lng, ...name] = rest;
        const sent = await client.send(current, 'location', { lat: Number(lat), lng: Number(lng), ...(name.length ? { name: name.join(' ') } : {}) });
        await persist();
        currentConv = sent.conv;
        return say(`  ✓ sent #${sent.seq}`);
      }
      case '/devices':
        for (const d of await client.listDevices()) {
          const when = d.online ? 'online' : d.lastActive ? `last active ${new Date(d.lastActive).toLocaleString()}` : 'not connected yet';
          say(`${d.current ? '*' : ' '} ${d.id}  ${d.name} (${d.platform}), signed in ${new Date(d.createdAt).toLocaleString()}, ${when}`);
        }
        return;
      case '/signout': {
        const which = rest[0];
        const r = !which ? await client.signOut() : which === 'all' ? await client.signOut('all')
          : which === 'others' ? await client.signOutOthers() : await client.signOutDevice(which);
        return say(`signed out ${r.signedOut.length} device(s)`);
      }
      default: return say(`unknown command ${cmd}; /help`);
    }
  }
}

main().catch((e: Error) => { console.error(e.message); process.exit(1); });
