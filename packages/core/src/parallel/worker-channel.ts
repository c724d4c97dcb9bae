/**
 * Requests and replies over one worker thread, shared by the generation workers
 * (check/generate-workers.ts) and the data-parallel workers (parallel/data-parallel.ts).
 *
 *   main thread                              worker thread
 *   new WorkerChannel(url, workerData)  ──▶  loads, then posts { ready: true }
 *   request(msg)  posts { id, ...msg }  ──▶  answers { id, ...reply } or { id, error }
 *   post(msg)     posts msg (no answer)
 *
 * Several requests may be in flight; answers are matched by id. The thread keeps the process
 * alive only while a request waits. A crash, or an exit with requests waiting, fails them
 * all and every later one (`failure`), and resolves `ready` so no caller waits on a dead thread.
 */
import { Worker } from "node:worker_threads";
import { RuntimeFailure } from "../errors.js";

/** What a worker thread posts back. */
export type ChannelReply<R> = { ready: true } | ({ id: number } & R) | { id: number; error: string };

export class WorkerChannel<Req extends object, Rep extends object> {
  readonly worker: Worker;
  /** Resolves when the thread says it is ready (or dies). */
  readonly ready: Promise<void>;
  /** Set once the thread crashed or exited with requests waiting. */
  failure: Error | undefined;
  private readonly pending = new Map<number, { resolve: (r: Rep) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  /** @param name says which thread failed, in errors ("generation worker", "data-parallel worker 0") */
  constructor(url: URL, workerData: unknown, private readonly name: string) {
    this.worker = new Worker(url, { workerData });
    this.worker.unref();
    let markReady = (): void => {};
    this.ready = new Promise<void>((resolve) => (markReady = resolve));
    this.worker.on("message", (reply: ChannelReply<Rep>) => {
      if ("ready" in reply) {
        markReady();
        return;
      }
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) {
        this.worker.unref();
      }
      if ("error" in reply) {
        p?.reject(new RuntimeFailure(`${this.name} failed: ${reply.error}`));
      } else {
        p?.resolve(reply as Rep);
      }
    });
    this.worker.on("error", (err) => {
      markReady();
      this.failAll(new RuntimeFailure(`${this.name} crashed: ${err.message}`, { cause: err }));
    });
    this.worker.on("exit", (code) => {
      markReady(); // a dead thread takes no work: requests fail at once
      if (this.pending.size > 0 || code !== 0) {
        this.failAll(new RuntimeFailure(`${this.name} exited (code ${code})`));
      }
    });
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) {
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Post `msg` with an id; resolves with the thread's answer, rejects on its { error }. */
  request(msg: Req): Promise<Rep> {
    return new Promise<Rep>((resolve, reject) => {
      if (this.failure) {
        reject(this.failure);
        return;
      }
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...msg });
    });
  }

  /** Post `msg` without waiting for an answer. */
  post(msg: Req): void {
    this.worker.postMessage(msg);
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}
