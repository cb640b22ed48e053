"""A stand-in for an AI agent: emits one GenAI-shaped trace every few seconds with the
OpenTelemetry Python SDK, to whatever OTEL_EXPORTER_OTLP_TRACES_ENDPOINT names (the proxy
sidecar on localhost:4318 in deploy/compose.yaml and deploy/kubernetes/)."""
import os
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider(resource=Resource.create({
    "service.name": os.environ.get("OTEL_SERVICE_NAME", "example-agent")}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from OTEL_* vars
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("example-agent")

interval = float(os.environ.get("AGENT_INTERVAL_SECONDS", "5"))
for turn in range(int(os.environ.get("AGENT_TURNS", "1000000"))):
    with tracer.start_as_current_span("invoke_agent example") as agent:
        agent.set_attribute("gen_ai.operation.name", "invoke_agent")
        with tracer.start_as_current_span("chat example-model") as chat:
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.input.messages",
                               f'[{{"role":"user","content":"turn {turn}: my key is sk-abc123def456ghi789"}}]')
            chat.set_attribute("gen_ai.output.messages", '[{"role":"assistant","content":"ok"}]')
    provider.force_flush()
    print(f"turn {turn} traced", flush=True)
    time.sleep(interval)
provider.shutdown()
