"""A local stand-in for the Hugging Face Hub: the routes `huggingface_hub` calls to
`snapshot_download` a dataset repository, served by aiohttp on 127.0.0.1 from files held in
memory. Point `HF_ENDPOINT` at `.url` and the real client talks to it as to the Hub.

    GET  /api/datasets/{ns}/{name}/revision/{rev}        repo info: the commit sha, the files
    GET  /api/datasets/{ns}/{name}/tree/{rev}[/{path}]   the file listing (one page)
    HEAD /datasets/{ns}/{name}/resolve/{rev}/{path}      ETag, X-Repo-Commit, Content-Length
    GET  /datasets/{ns}/{name}/resolve/{rev}/{path}      the bytes

A repository has one commit (its sha is a hash of its files); `rev` is a branch name (any
name but a sha of another commit) or that sha. An unknown repository answers 404 with the
Hub's `X-Error-Code: RepoNotFound`, an unknown revision `RevisionNotFound`. `downloads` counts
the file bodies sent (GET on resolve), so a test sees what a re-run fetched again;
`fail_after` makes every file GET after that many answer 500 (a download cut short);
`delay_s` holds each file body back that long (a slow link).
"""

from __future__ import annotations

import asyncio
import hashlib

from aiohttp import web

from deepvision.llm.fake_server import BackgroundApp

_SHA = frozenset("0123456789abcdef")


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubStandIn(BackgroundApp):
    """`HubStandIn({"MathLLMs/MathVision": {"data/test-00000-of-00001.parquet": b"..."}})
    .start()`; `.url` for HF_ENDPOINT; `.sha(repo)`; `.stop()`."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        super().__init__()
        self.repos = repos
        self.downloads = 0
        self.fail_after: int | None = None
        self.delay_s = 0.0
        self.url = f"http://{self.host}:{self.port}"

    def sha(self, repo: str) -> str:
        digest = hashlib.sha1()
        for path in sorted(self.repos[repo]):
            digest.update(path.encode() + b"\0" + self.repos[repo][path])
        return digest.hexdigest()

    def routes(self, app: web.Application) -> None:
        repo = "/{ns}/{name}"
        app.router.add_get(f"/api/datasets{repo}/revision/{{rev}}", self._info)
        app.router.add_get(f"/api/datasets{repo}/tree/{{rev}}", self._tree)
        app.router.add_get(f"/api/datasets{repo}/tree/{{rev}}/{{path:.*}}", self._tree)
        # GET also answers HEAD in aiohttp (allow_head), with the same headers and no body.
        app.router.add_get(f"/datasets{repo}/resolve/{{rev}}/{{path:.*}}", self._resolve)

    # -- routes ------------------------------------------------------------------------------

    def _files(self, request: web.Request) -> tuple[str, dict[str, bytes]]:
        """The repository and its files at the revision asked for, or the Hub's 404."""
        repo = f"{request.match_info['ns']}/{request.match_info['name']}"
        if repo not in self.repos:
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "RepoNotFound"}, text="Repository not found"
            )
        rev = request.match_info["rev"]
        if len(rev) == 40 and set(rev) <= _SHA and rev != self.sha(repo):
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "RevisionNotFound"}, text="Revision not found"
            )
        return repo, self.repos[repo]

    async def _info(self, request: web.Request) -> web.Response:
        repo, files = self._files(request)
        siblings = [{"rfilename": p} for p in sorted(files)]
        return web.json_response(
            {"id": repo, "sha": self.sha(repo), "private": False, "siblings": siblings}
        )

    async def _tree(self, request: web.Request) -> web.Response:
        _, files = self._files(request)
        under = request.match_info.get("path", "").strip("/")
        listing = [
            {"type": "file", "path": p, "size": len(data), "oid": _git_blob_id(data)}
            for p, data in sorted(files.items())
            if not under or p.startswith(under + "/")
        ]
        return web.json_response(listing)

    async def _resolve(self, request: web.Request) -> web.Response:
        repo, files = self._files(request)
        data = files.get(request.match_info["path"])
        if data is None:
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"}, text="no file")
        headers = {
            "ETag": f'"{_git_blob_id(data)}"',
            "X-Repo-Commit": self.sha(repo),
            "Accept-Ranges": "bytes",
        }
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(headers=headers)
        if self.fail_after is not None and self.downloads >= self.fail_after:
            raise web.HTTPInternalServerError(text="the stand-in cut this download")
        self.downloads += 1
        await asyncio.sleep(self.delay_s)
        start = _range_start(request.headers.get("Range"))
        return web.Response(body=data[start:], status=206 if start else 200, headers=headers)


def _range_start(header: str | None) -> int:
    """The first byte of a `Range: bytes=N-` request (a resumed download), else 0."""
    if header and header.startswith("bytes=") and header.endswith("-"):
        return int(header[len("bytes=") : -1] or 0)
    return 0
