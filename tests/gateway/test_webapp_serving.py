"""The gateway serves the built browser app at /app/ under a strict CSP, and says how to
build it when it is missing."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from gateway import Settings, create_app
from tests.gateway.helpers import ManualClock, TestClient


def _client(tmp_path: Path, web_dir: Path) -> tuple[FastAPI, Settings]:
    settings = Settings(data_dir=tmp_path / "data", web_dir=web_dir)
    return create_app(settings, clock=ManualClock()), settings


def _built(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>ehrgate</title>")
    (folder / "app.js").write_text("export {};")
    (folder / "app.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("outside")
    return folder


def _assert_csp(headers: object) -> None:
    csp = headers["content-security-policy"]  # type: ignore[index]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "object-src blob:" in csp
    assert "frame-src blob:" in csp
    assert "http" not in csp  # no CDN origin anywhere


def test_app_files_are_served_with_a_strict_csp(tmp_path: Path) -> None:
    app, _ = _client(tmp_path, _built(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        index = client.get("/app/")
        assert index.status_code == 200
        assert "<title>ehrgate</title>" in index.text
        assert index.headers["content-type"].startswith("text/html")
        _assert_csp(index.headers)
        script = client.get("/app/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        _assert_csp(script.headers)
        assert client.get("/app/app.css").headers["content-type"].startswith("text/css")
        redirect = client.get("/app", follow_redirects=False)
        assert redirect.status_code == 308
        assert redirect.headers["location"] == "/app/"


def test_nothing_outside_the_build_is_served(tmp_path: Path) -> None:
    app, _ = _client(tmp_path, _built(tmp_path))
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in (
            "/app/..%2Fsecret.txt",
            "/app/%2e%2e/secret.txt",
            "/app/.hidden.js",
            "/app/nope.js",
            "/app/sub/app.js",
        ):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "outside" not in answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")
            _assert_csp(answer.headers)


def test_a_missing_build_is_a_404_problem_saying_how_to_build(tmp_path: Path) -> None:
    app, _ = _client(tmp_path, tmp_path / "no-such-dist")
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/app/")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "web/build" in answer.json()["detail"]
        _assert_csp(answer.headers)
