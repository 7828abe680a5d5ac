"""Helpers shared by the test suite (toy scenarios, random configs)."""

# CPU devices the test suite runs on (tests/conftest.py), whatever the host's cores.
TEST_CPU_DEVICES = 2
