/**
 * The leak check every tfjs test shares: start `backend` (if given) before each test, and
 * assert after it that the test left no tensor behind (tf.tidy / dispose everywhere).
 */
import * as tf from "@tensorflow/tfjs-core";
import { afterEach, beforeEach, expect } from "vitest";
import { initBackend, type BackendName } from "../../src/backend.js";

export function expectNoLeakedTensors(backend?: BackendName): void {
  let before = 0;
  beforeEach(async () => {
    if (backend) {
      await initBackend(backend);
    }
    before = tf.memory().numTensors;
  });
  afterEach(() => {
    expect(tf.memory().numTensors).toBe(before);
  });
}
