import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM = FIXTURES / "upstream"


# Factories: the one way tests make presets, put model files on disk, and log a user in.


def make_preset(preset_id="ALPHA", files=None, category="Image Generation", **fields):
    """A preset in the catalogue (its category made as needed). `files` holds each file's PresetFile
    fields, a path at least; by default one checkpoint named after the preset."""
    from presets.models import Category, Preset, PresetFile

    category, _ = Category.objects.get_or_create(name=category, defaults={"type": "image"})
    preset = Preset.objects.create(id=preset_id, **{"name": preset_id, "category": category, "type": "image", **fields})
    for position, file in enumerate(files or [{"path": f"checkpoints/{preset_id.lower()}.safetensors"}]):
        PresetFile.objects.create(
            preset=preset, position=position, **{"url": "https://example.org/model", "size": "1MB", **file}
        )
    return preset


def served_preset(server, preset_id="ALPHA", sizes=(50_000,), paths=None, with_hashes=True, **fields):
    """A preset whose files the fault server serves at /<id>/<position>.safetensors, with their
    sha256 and exact size when `with_hashes` (upstream's catalogue never has them)."""
    files = []
    for position, size in enumerate(sizes):
        served = server.add_file(f"/{preset_id}/{position}.safetensors", size)
        files.append(
            {
                "path": paths[position] if paths else f"checkpoints/{preset_id.lower()}_{position}.safetensors",
                "url": server.url(f"/{preset_id}/{position}.safetensors"),
                "sha256": served.sha256 if with_hashes else "",
                "exact_bytes": size if with_hashes else None,
            }
        )
    return make_preset(preset_id, files, **fields)


@pytest.fixture
def model_file(settings):
    """Puts a file of `size` bytes at `relative` under the model root (or under `root`)."""

    def put(relative, size=10, root=None):
        target = Path(root or settings.MODEL_BASE_PATH) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x" * size)
        return target

    return put


@pytest.fixture
def user_client(client, django_user_model):
    """A browser logged in as an ordinary user, alice."""
    client.force_login(django_user_model.objects.create_user("alice", password="pw"))
    return client


def pytest_sessionstart(session):
    """Django recreates the SQLite test database but leaves the -wal/-shm files of a run that was
    killed; SQLite then reports a disk I/O error. Start from nothing, in a DATA_DIR that exists."""
    if not session.config.pluginmanager.hasplugin("django"):
        return
    from django.conf import settings

    from presetsite import data_dir

    data_dir.create()
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        name = Path(settings.DATABASES["default"]["TEST"]["NAME"])
        for leftover in (name, name.with_name(name.name + "-wal"), name.with_name(name.name + "-shm")):
            leftover.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def isolated_dirs(request, tmp_path):
    """Each test gets its own model root and catalogue copy, never the developer's data/."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    settings = request.getfixturevalue("settings")
    settings.MODEL_BASE_PATH = tmp_path / "models"
    settings.PRESETS_FILE = tmp_path / "data" / "presets.yaml"
    settings.MODEL_BASE_PATH.mkdir()
    # Retries wait milliseconds, not minutes; the tests' small files need no free-space reserve.
    settings.DOWNLOAD_BACKOFF_INITIAL = 0.01
    settings.DOWNLOAD_BACKOFF_MAX = 0.05
    settings.DOWNLOAD_DISK_RESERVE = 0
    # Tests render pages without running collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


class CatalogueServer:
    """Serves one presets.yaml body on 127.0.0.1 with an ETag, answering 304 to If-None-Match."""

    def __init__(self):
        self.body = b""
        self.status = 200
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(dict(self.headers))
                etag = f'"{hashlib.sha256(server.body).hexdigest()[:16]}"'
                if server.status != 200:
                    self.send_response(server.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                else:
                    self.send_response(200)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", str(len(server.body)))
                    self.end_headers()
                    self.wfile.write(server.body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/presets.yaml"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def catalogue_server():
    server = CatalogueServer()
    yield server
    server.close()


@pytest.fixture
def server():
    """A local HTTP server serving generated model files, with faults on demand."""
    from tests.faultserver import FaultServer

    with FaultServer() as running:
        yield running
