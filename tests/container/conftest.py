"""tests/container: the container image, the Debian package and the compose file, run by
scripts/test-packages.sh once it has a Docker daemon, the image and the .deb:

    IMAGE=otlp-mlflow-proxy:test DEB=build/package/otlp-mlflow-proxy_0.1.0_amd64.deb \\
      APT_SOURCES=build-docker/debian.sources python -m pytest tests/container

IMAGE: the image under test; SLIM_IMAGE (debian:12-slim): its base; BASE_IMAGE (debian:12): the
fresh system the .deb is installed on; DEB: the package; APT_SOURCES: a deb822 file that becomes
the containers' /etc/apt/sources.list.d/debian.sources (the host's mirror). A missing daemon or
setting fails the tests: the script decides when to skip them."""
from __future__ import annotations

import pytest

from support.docker import Container, daemon_answers, setting

_CONTAINERS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def docker_daemon():
    if not daemon_answers():
        pytest.fail("no Docker daemon answers: scripts/test-packages.sh starts one")


@pytest.fixture(scope="session")
def image(docker_daemon) -> str:
    return setting("IMAGE")


@pytest.fixture
def containers(request, docker_daemon):
    """containers(image, *docker_run_args, **Container.run kwargs) -> a started Container,
    removed with its volumes at teardown; its log goes into a failing test's report."""
    started: list[Container] = []
    request.node.stash[_CONTAINERS] = started

    def run(image_name: str, *args: str, **kwargs) -> Container:
        box = Container.run(image_name, *args, **kwargs)
        started.append(box)
        return box

    yield run
    for box in started:
        box.remove()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for box in item.stash.get(_CONTAINERS, []):
            report.sections.append((f"container {box.name} log", box.logs()[-6000:]))
    return report
