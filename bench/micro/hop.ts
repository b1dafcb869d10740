/**
 * What one message to an entity costs, dispatch included (src/actors/region.ts, on nact's scheduling):
 * `entities` live entities with a handler that does nothing, each told one message per event-loop turn for
 * `turns` turns, as a chat message's hops reach many entities at once. Prints CPU µs per message.
 *
 *   npm run build && node dist/bench/micro/hop.js [entities=1000] [turns=300]
 */
import { start, stop } from 'nact';
import { Region } from '../../src/actors/region.js';
import type { Envelope } from '../../src/messages/seam.js';

const [entities = 1000, turns = 300] = process.argv.slice(2).map(Number);
const tick = () => new Promise<void>((r) => setImmediate(r));

async function main(): Promise<void> {
  const system = start();
  let handled = 0;
  const region = new Region<Envelope>(system, { type: 'user', load: async () => ({ handle: () => { handled++; } }) }, () => undefined, 600_000);
  const ids = Array.from({ length: entities }, (_, i) => `e${i}`);
  const msg = { t: 'hop' } as unknown as Envelope;
  for (const id of ids) region.tell(id, msg); // spawned and loaded before the clock starts
  while (handled < entities) await tick();
  handled = 0;
  const cpu0 = process.cpuUsage();
  for (let turn = 0; turn < turns; turn++) {
    for (const id of ids) region.tell(id, msg);
    await tick();
  }
  while (handled < entities * turns) await tick();
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ entities, turns, messages: handled, cpu_us_per_message: +((cpu.user + cpu.system) / handled).toFixed(2) }));
  region.stopAll();
  stop(system);
}

void main();
