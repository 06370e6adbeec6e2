"""The browser app (web/, DESIGN §11) served at `/app/`: the static files esbuild built into
web/dist, or the folder named by `EHRGATE_WEB_DIR`.

Every answer under /app carries a strict Content-Security-Policy: scripts, styles and
connections from this origin only, no inline script, and `blob:` only where the app shows a
decrypted PDF (object and frame sources). Without a build, /app/ answers a 404 problem that
says how to build it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from gateway.deps import StateDep
from gateway.errors import NotFound, problem_response

router = APIRouter(include_in_schema=False)

REPO_WEB_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "object-src blob:",
        "frame-src blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def web_dir(configured: Path | None) -> Path:
    return configured if configured is not None else REPO_WEB_DIST


def _file(folder: Path, name: str) -> Path | None:
    """The built file *name* (a plain name from the build), never anything outside *folder*."""
    if name == "":
        name = "index.html"
    if "/" in name or "\\" in name or name.startswith(".") or Path(name).suffix not in MEDIA_TYPES:
        return None
    path = folder / name
    return path if path.is_file() else None


@router.get("/app")
async def app_root() -> Response:
    return RedirectResponse("/app/", status_code=308, headers=SECURITY_HEADERS)


@router.get("/app/{name:path}")
async def app_file(name: str, request: Request, state: StateDep) -> Response:
    folder = web_dir(state.settings.web_dir)
    if not (folder / "index.html").is_file():
        return problem_response(
            NotFound,
            f"the web app is not built ({folder} has no index.html): run web/build "
            "(./dev runs it) or set EHRGATE_WEB_DIR to a built web/dist",
            request=request,
            headers=SECURITY_HEADERS,
        )
    path = _file(folder, name)
    if path is None:
        return problem_response(
            NotFound,
            f"/app/{name} is not part of the web app",
            request=request,
            headers=SECURITY_HEADERS,
        )
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)
