/**
 * Learning-rate schedules, after nanoGPT's get_lr: a linear warmup, then constant, linear or
 * cosine decay to minLr at totalSteps.
 */
import { InputError } from "../errors.js";

export const SCHEDULE_NAMES = ["constant", "linear", "cosine"] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

export interface ScheduleParams {
  /** The shape after warmup. */
  schedule: ScheduleName;
  /** The peak learning rate, reached at the end of warmup. */
  baseLr: number;
  /** Optimizer steps in the whole run; decay ends here. */
  totalSteps: number;
  /** Steps of linear warmup, in [0, totalSteps]. */
  warmupSteps: number;
  /** Where linear and cosine decay end (default 0); constant ignores it. */
  minLr?: number;
}

/** Check a schedule once (e.g. when options are parsed), so lrAt cannot throw mid-run. */
export function validateSchedule(p: ScheduleParams): void {
  const { baseLr, totalSteps, warmupSteps, minLr = 0 } = p;
  if (!SCHEDULE_NAMES.includes(p.schedule)) {
    throw new InputError(`schedule "${String(p.schedule)}" is unknown`, { hint: `use one of ${SCHEDULE_NAMES.join(", ")}` });
  }
  if (!Number.isFinite(baseLr) || baseLr < 0) {
    throw new InputError(`schedule: baseLr = ${baseLr} must be a finite number ≥ 0`);
  }
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new InputError(`schedule: totalSteps = ${totalSteps} must be a positive integer`);
  }
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new InputError(`schedule: warmupSteps = ${warmupSteps} must be an integer in [0, totalSteps = ${totalSteps}]`);
  }
  if (!Number.isFinite(minLr) || minLr < 0 || minLr > baseLr) {
    throw new InputError(`schedule: minLr = ${minLr} must be in [0, baseLr = ${baseLr}]`);
  }
}

/**
 * The learning rate of optimizer step `step` (0-based: the first update is step 0).
 * @param step the step about to run, an integer ≥ 0; steps past totalSteps get the final lr
 * @param p the schedule
 */
export function lrAt(step: number, p: ScheduleParams): number {
  validateSchedule(p);
  if (!Number.isInteger(step) || step < 0) {
    throw new InputError(`lrAt: step = ${step} must be an integer ≥ 0`);
  }
  const { schedule, baseLr, totalSteps, warmupSteps } = p;
  const minLr = p.minLr ?? 0;
  // 1) linear warmup: (step + 1) / (warmupSteps + 1) of baseLr, so step 0 already learns
  if (step < warmupSteps) {
    return (baseLr * (step + 1)) / (warmupSteps + 1);
  }
  // 2) constant after warmup
  if (schedule === "constant") {
    return baseLr;
  }
  // 3) past the end of decay: minLr
  if (step >= totalSteps) {
    return minLr;
  }
  // 4) in between, decay from baseLr at warmupSteps to minLr at totalSteps
  const ratio = (step - warmupSteps) / (totalSteps - warmupSteps); // in [0, 1)
  const coeff = schedule === "linear" ? 1 - ratio : 0.5 * (1 + Math.cos(Math.PI * ratio)); // 1 → 0
  return minLr + coeff * (baseLr - minLr);
}
