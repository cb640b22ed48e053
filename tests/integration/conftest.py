"""Integration tests: the proxy binary against test doubles. Shared fixtures (start_proxy,
mlflow_server, unique_name, free ports) live in tests/conftest.py; tests here are marked
`integration` automatically."""
