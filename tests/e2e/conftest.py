"""Fixtures shared by the end-to-end tests that run the real Koog agent."""
from __future__ import annotations

import pytest

from koog_runner import KoogBuildError, build_koog_agent, java_and_maven


@pytest.fixture(scope="session")
def koog_jar():
    """The agent's runnable jar, built once per session (a no-op when it is up to date)."""
    java, mvn = java_and_maven()
    if java is None or mvn is None:
        pytest.skip("the Koog agent needs Java 17 and Maven (Debian: openjdk-17-jdk-headless, "
                    f"maven; scripts/test.sh installs them): java={java}, mvn={mvn}")
    try:
        return build_koog_agent()
    except KoogBuildError as e:
        pytest.fail(str(e), pytrace=False)
