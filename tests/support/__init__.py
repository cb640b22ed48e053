"""Python test harness for otlp-mlflow-proxy: a real MLflow server, the proxy process, OTLP
clients (the OpenTelemetry Python SDK and raw OTLP-JSON/protobuf over HTTP) and helpers that read
traces back from MLflow and compare them span by span."""
