import type { Clock } from './clock.js';

/** Cancels a scheduled task; a no-op once it ran. */
export type Cancel = () => void;

/**
 * When time-driven work runs (the agent's rotations and re-syncs, the server certificate's renewal). Injected with the clock so that tests move
 * time forward and run what is due, instead of sleeping for a certificate's half-life.
 */
export interface Scheduler {
  /** Runs `task` once the clock reaches `at` (immediately when it already has). */
  schedule(at: Date, task: () => Promise<void>): Cancel;
}

/** Real time: `setTimeout`, re-armed in steps because timers overflow after about 24.8 days. */
export class TimerScheduler implements Scheduler {
  constructor(private readonly clock: Clock) {}

  schedule(at: Date, task: () => Promise<void>): Cancel {
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      const wait = at.getTime() - this.clock.now().getTime();
      timer = setTimeout(() => (wait > MAX_TIMER_MS ? arm() : void task()), Math.min(Math.max(wait, 0), MAX_TIMER_MS));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  }
}
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A scheduler for tests, driven by a `ManualClock`: nothing runs until {@link runDue}, which runs
 * the tasks whose time had come when it was called, earliest first, and waits for them. Tasks
 * they schedule wait for the next call, so a task that reschedules itself cannot loop forever.
 */
export class ManualScheduler implements Scheduler {
  #tasks: { at: number; task: () => Promise<void>; cancelled: boolean }[] = [];

  constructor(private readonly clock: Clock) {}

  schedule(at: Date, task: () => Promise<void>): Cancel {
    const entry = { at: at.getTime(), task, cancelled: false };
    this.#tasks.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  async runDue(): Promise<void> {
    const now = this.clock.now().getTime();
    const due = this.#tasks.filter((t) => !t.cancelled && t.at <= now).sort((a, b) => a.at - b.at);
    this.#tasks = this.#tasks.filter((t) => !due.includes(t) && !t.cancelled);
    for (const t of due) await t.task();
  }
}
