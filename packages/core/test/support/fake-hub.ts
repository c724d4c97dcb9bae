/**
 * A fake Hugging Face Hub on 127.0.0.1 for the hub tests: the routes @huggingface/hub's
 * `modelInfo` and `listFiles` call (`/api/models/{id}/revision/{rev}`, `/api/models/{id}/tree/{commit}`)
 * and the file route we download from (`/{id}/resolve/{commit}/{file}`, with ETag,
 * X-Repo-Commit, Content-Length and Range), answering errors with the Hub's `X-Error-Code` header.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRepo {
  sha: string;
  files: Record<string, Buffer>;
  /** Stored with Git LFS: listed with `lfs.oid` = sha256, served with X-Linked-Etag. */
  lfs?: string[];
  /** Directories at the top level (listed, never downloaded). */
  dirs?: string[];
  /** /resolve answers 401 GatedRepo unless `Authorization: Bearer hf_granted`. */
  gated?: boolean;
}

export interface Request {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export interface FakeHub {
  url: string;
  requests: Request[];
  /** Close the socket after this many body bytes of `file`, `times` times. */
  cut?: { file: string; after: number; times: number };
  /** Answer Range requests with the whole file (200), as a server without range support. */
  ignoreRange?: boolean;
  /** Status for an unknown repo: the Hub says 401 without a token, 404 with one. */
  missingStatus: number;
  close(): Promise<void>;
}

export const gitOid = (b: Buffer): string => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
export const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const hub: FakeHub = { url: "", requests: [], missingStatus: 404, close: async () => {} };
  const fail = (res: http.ServerResponse, status: number, code: string): void => {
    res.writeHead(status, { "Content-Type": "application/json", "X-Error-Code": code });
    res.end(JSON.stringify({ error: code }));
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    hub.requests.push({ method: req.method ?? "", url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const api = parts[0] === "api" && parts[1] === "models";
    const [org, name, route, rev, ...rest] = api ? parts.slice(2) : parts;
    const repo = repos[`${org}/${name}`];
    if (!repo) {
      return fail(res, hub.missingStatus, "RepositoryNotFound");
    }
    if (api && route === "revision") {
      if (rev !== "main" && rev !== repo.sha) {
        return fail(res, 404, "RevisionNotFound");
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(JSON.stringify({ _id: "0", id: `${org}/${name}`, sha: repo.sha, private: false, gated: repo.gated ? "manual" : false, lastModified: "2024-01-01T00:00:00.000Z" }));
    }
    if (api && route === "tree" && rev === repo.sha) {
      const entries = [
        ...Object.entries(repo.files).map(([p, b]) => ({
          type: "file",
          path: p,
          size: b.length,
          oid: gitOid(b),
          ...(repo.lfs?.includes(p) && { lfs: { oid: sha256(b), size: b.length, pointerSize: 134 } }),
        })),
        ...(repo.dirs ?? []).map((d) => ({ type: "directory", path: d, size: 0, oid: gitOid(Buffer.from(d)) })),
      ];
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(JSON.stringify(entries));
    }
    if (!api && route === "resolve" && rev === repo.sha) {
      const file = rest.join("/");
      const body = repo.files[file];
      if (repo.gated && req.headers.authorization !== "Bearer hf_granted") {
        return fail(res, 401, "GatedRepo");
      }
      if (!body) {
        return fail(res, 404, "EntryNotFound");
      }
      const etag = repo.lfs?.includes(file) ? sha256(body) : gitOid(body);
      const headers: http.OutgoingHttpHeaders = { "Accept-Ranges": "bytes", ETag: `"${etag}"`, "X-Repo-Commit": repo.sha };
      if (repo.lfs?.includes(file)) {
        headers["X-Linked-Etag"] = `"${etag}"`;
      }
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      let start = 0;
      let status = 200;
      if (m && !hub.ignoreRange) {
        start = Number(m[1]);
        const end = m[2] ? Number(m[2]) : body.length - 1;
        if (start >= body.length) {
          res.writeHead(416, { "Content-Range": `bytes */${body.length}` });
          return res.end();
        }
        status = 206;
        headers["Content-Range"] = `bytes ${start}-${end}/${body.length}`;
      }
      const slice = body.subarray(start);
      headers["Content-Length"] = slice.length;
      res.writeHead(status, headers);
      if (hub.cut && hub.cut.file === file && hub.cut.times > 0) {
        hub.cut.times--;
        // Send part of the body, give the client time to store it, then drop the connection.
        return res.write(slice.subarray(0, hub.cut.after), () => setTimeout(() => res.socket?.destroy(), 100));
      }
      return res.end(slice);
    }
    return fail(res, 404, "EntryNotFound");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return hub;
}
