import { install, type Clock } from '@sinonjs/fake-timers';

/**
 * Fakes `Date` and intervals for the rest of test `t`: time starts at 0 and moves only when the test says
 * `clock.tick(ms)`, which runs every interval falling due on the way, in order. Unit tests of timers run on
 * it instead of sleeping, so they check the exact windows and a busy machine can't change the outcome.
 * `setTimeout` stays real (tap's own timeout uses it).
 */
export function fakeClock(t: { teardown(fn: () => unknown): void }): Clock {
  const clock = install({ now: 0, toFake: ['Date', 'setInterval', 'clearInterval'] });
  t.teardown(() => clock.uninstall());
  return clock;
}
