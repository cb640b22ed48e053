// A real Koog agent for the proxy's end-to-end tests: Koog's mock LLM executor answers first with
// a get_weather tool call and then with a final text, so no network or API key is needed; Koog's
// own OpenTelemetry feature exports the spans with the Java SDK's OtlpHttpSpanExporter.
//
// Usage: java -jar target/koog-agent.jar [--endpoint URL] [--service-name NAME] [--verbose]
//            [--agent-id ID] [--prompt TEXT] [--system-prompt TEXT] [--city TEXT] [--header K=V]...
//            [--resource K=V]... [--timeout-seconds N] [--processor batch|simple]
// --city is the get_weather argument the mock LLM asks for (default Paris); the tool's result
// repeats it, so text planted there travels in the tool call's arguments and result.
// The endpoint defaults to $KOOG_OTLP_ENDPOINT, else http://localhost:4318/v1/traces (Koog itself
// ignores the OTEL_* variables). Prints one JSON object on stdout (see Report); logs go to stderr.
// Exit code 0 when every export succeeded, 2 when one failed, 1 on a usage error or agent failure.
package koogagent

import ai.koog.agents.core.agent.AIAgent
import ai.koog.agents.core.dsl.builder.strategy
import ai.koog.agents.core.dsl.extension.nodeExecuteTools
import ai.koog.agents.core.dsl.extension.nodeLLMRequest
import ai.koog.agents.core.dsl.extension.nodeLLMSendToolResults
import ai.koog.agents.core.dsl.extension.onTextMessage
import ai.koog.agents.core.dsl.extension.onToolCalls
import ai.koog.agents.core.tools.SimpleTool
import ai.koog.agents.core.tools.ToolRegistry
import ai.koog.agents.core.tools.annotations.LLMDescription
import ai.koog.agents.features.opentelemetry.feature.OpenTelemetry
import ai.koog.agents.testing.tools.getMockExecutor
import ai.koog.prompt.executor.clients.openai.OpenAIModels
import ai.koog.serialization.typeToken
import io.opentelemetry.exporter.otlp.http.trace.OtlpHttpSpanExporter
import io.opentelemetry.kotlin.ExperimentalApi
import io.opentelemetry.kotlin.tracing.export.SpanProcessor
import io.opentelemetry.kotlin.tracing.export.batchSpanProcessor
import io.opentelemetry.kotlin.tracing.export.simpleSpanProcessor
import io.opentelemetry.kotlin.tracing.export.toOtelKotlinSpanExporter
import io.opentelemetry.sdk.common.CompletableResultCode
import io.opentelemetry.sdk.trace.data.SpanData
import io.opentelemetry.sdk.trace.export.SpanExporter
import kotlinx.coroutines.runBlocking
import kotlinx.serialization.Serializable
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.buildJsonObject
import kotlinx.serialization.json.put
import kotlinx.serialization.json.putJsonArray
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.JsonArray
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

const val KOOG_VERSION = "1.0.0"
const val TOOL_RESULT = "Sunny, 21 degrees Celsius, light wind from the west"
const val FINAL_ANSWER = "It is sunny and 21 degrees Celsius in Paris today."

@Serializable
data class WeatherArgs(
    @property:LLMDescription("The city to get the weather for")
    val city: String,
)

/** The agent's only tool: a real tool (not mocked), so Koog runs it and traces execute_tool. */
object GetWeatherTool : SimpleTool<WeatherArgs>(
    argsType = typeToken<WeatherArgs>(),
    name = "get_weather",
    description = "Returns the current weather for a city",
) {
    override suspend fun execute(args: WeatherArgs): String = "$TOOL_RESULT (${args.city})"
}

/** Forwards to the OTLP exporter and remembers what it exported and how each export ended. */
class RecordingExporter(private val delegate: SpanExporter) : SpanExporter {
    val spans = ConcurrentLinkedQueue<SpanData>()
    val results = ConcurrentLinkedQueue<String>()
    private val pending = ConcurrentLinkedQueue<CompletableResultCode>()

    override fun export(spans: Collection<SpanData>): CompletableResultCode {
        this.spans.addAll(spans)
        val result = delegate.export(spans)
        pending.add(result)
        result.whenComplete { results.add(if (result.isSuccess) "SUCCESS" else "FAILURE") }
        return result
    }

    override fun flush(): CompletableResultCode = delegate.flush()

    /** Waits until at least one export was made, every export has completed and no new one has
     *  started for 300 ms (the processors hand spans to the exporter from other threads, so under
     *  load the first export() may start well after forceFlush returns). */
    fun awaitQuiet(timeoutSeconds: Long) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds)
        var seen = -1
        while (System.nanoTime() < deadline) {
            val now = pending.size
            CompletableResultCode.ofAll(pending.toList()).join(timeoutSeconds, TimeUnit.SECONDS)
            if (now > 0 && now == seen && results.size == now) return
            seen = now
            Thread.sleep(300)
        }
    }

    override fun shutdown(): CompletableResultCode = delegate.shutdown()
}

class Options(
    var endpoint: String = System.getenv("KOOG_OTLP_ENDPOINT") ?: "http://localhost:4318/v1/traces",
    var serviceName: String = "koog-e2e-agent",
    var verbose: Boolean = false,
    var agentId: String = "weather-agent",
    var prompt: String = "What is the weather in Paris?",
    var systemPrompt: String = "You are a helpful weather assistant. Use the get_weather tool.",
    var city: String = "Paris",
    val headers: MutableMap<String, String> = linkedMapOf(),
    val resource: MutableMap<String, Any> = linkedMapOf(),
    var timeoutSeconds: Long = 30,
    var processor: String = "batch",
)

fun usage(message: String): Nothing {
    System.err.println("koog-agent: $message")
    System.err.println(
        "usage: koog-agent [--endpoint URL] [--service-name NAME] [--verbose] [--agent-id ID] " +
            "[--prompt TEXT] [--system-prompt TEXT] [--city TEXT] [--header K=V]... [--resource K=V]... " +
            "[--timeout-seconds N] [--processor batch|simple]"
    )
    exitProcess(1)
}

fun parse(args: Array<String>): Options {
    val o = Options()
    var i = 0
    fun value(): String = args.getOrNull(++i) ?: usage("${args[i - 1]} needs a value")
    fun pair(): Pair<String, String> {
        val v = value()
        val eq = v.indexOf('=')
        if (eq <= 0) usage("${args[i - 1]} wants KEY=VALUE, got '$v'")
        return v.substring(0, eq) to v.substring(eq + 1)
    }
    while (i < args.size) {
        when (val a = args[i]) {
            "--endpoint" -> o.endpoint = value()
            "--service-name" -> o.serviceName = value()
            "--verbose" -> o.verbose = true
            "--no-verbose" -> o.verbose = false
            "--agent-id" -> o.agentId = value()
            "--prompt" -> o.prompt = value()
            "--system-prompt" -> o.systemPrompt = value()
            "--city" -> o.city = value()
            "--header" -> pair().let { o.headers[it.first] = it.second }
            "--resource" -> pair().let { o.resource[it.first] = it.second }
            "--timeout-seconds" -> o.timeoutSeconds = value().toLongOrNull() ?: usage("bad --timeout-seconds")
            "--processor" -> o.processor = value().also {
                if (it != "batch" && it != "simple") usage("--processor is batch or simple")
            }
            "-h", "--help" -> usage("help")
            else -> usage("unknown argument '$a'")
        }
        i++
    }
    if (!o.prompt.contains("weather")) usage("--prompt must mention 'weather' (the mock LLM keys on it)")
    return o
}

@OptIn(ExperimentalApi::class)
fun main(args: Array<String>) {
    // kotlin-logging announces itself on stdout, which carries our JSON report.
    io.github.oshai.kotlinlogging.KotlinLoggingConfiguration.logStartupMessage = false
    val o = parse(args)

    val otlp = OtlpHttpSpanExporter.builder()
        .setEndpoint(o.endpoint)
        .setTimeout(o.timeoutSeconds, TimeUnit.SECONDS)
        .apply { o.headers.forEach { (k, v) -> addHeader(k, v) } }
        .build()
    val exporter = RecordingExporter(otlp)

    // The mock LLM: the user's question -> a get_weather tool call; the tool's result -> the answer.
    val executor = getMockExecutor {
        mockLLMToolCall(GetWeatherTool, WeatherArgs(o.city)) onRequestContains "weather"
        mockLLMAnswer(FINAL_ANSWER) onRequestContains "Sunny"
        mockLLMAnswer("I do not know.").asDefaultResponse
    }

    // The same graph as Koog's singleRunStrategy, named so the span names are predictable.
    val weatherStrategy = strategy<String, String>("weather_strategy") {
        val callLLM by nodeLLMRequest("call_llm")
        val executeTool by nodeExecuteTools("execute_tool")
        val sendToolResult by nodeLLMSendToolResults("send_tool_result")
        edge(nodeStart forwardTo callLLM)
        edge(callLLM forwardTo executeTool onToolCalls { true })
        edge(callLLM forwardTo nodeFinish onTextMessage { true })
        edge(executeTool forwardTo sendToolResult)
        edge(sendToolResult forwardTo nodeFinish onTextMessage { true })
        edge(sendToolResult forwardTo executeTool onToolCalls { true })
    }

    // Our own processor, flushed by us after the agent closes. Koog's setShutdownOnAgentClose(true)
    // is not enough: opentelemetry-kotlin 0.3.0's BatchSpanProcessorImpl.shutdown() shuts the
    // exporter down before it drains the queue, so the spans that end at close (strategy,
    // invoke_agent and the root create_agent) are silently lost.
    var processor: SpanProcessor? = null

    var answer: String? = null
    var error: Throwable? = null
    val started = System.nanoTime()
    runBlocking {
        val agent = AIAgent(
            promptExecutor = executor,
            llmModel = OpenAIModels.Chat.GPT4o,
            strategy = weatherStrategy,
            toolRegistry = ToolRegistry.builder().tool(GetWeatherTool).build(),
            systemPrompt = o.systemPrompt,
            id = o.agentId,
        ) {
            install(OpenTelemetry) {
                setServiceInfo(o.serviceName, KOOG_VERSION)
                if (o.resource.isNotEmpty()) addResourceAttributes(o.resource)
                addSpanProcessor {
                    val kotlinExporter = exporter.toOtelKotlinSpanExporter()
                    (if (o.processor == "simple") simpleSpanProcessor(kotlinExporter)
                    else batchSpanProcessor(kotlinExporter)).also { processor = it }
                }
                setVerbose(o.verbose)
            }
        }
        try {
            answer = agent.run(o.prompt)
        } catch (e: Throwable) {
            error = e
        } finally {
            agent.close() // ends the create_agent root span
        }
        val p = processor ?: error("Koog did not build the span processor")
        p.forceFlush()
        exporter.awaitQuiet(o.timeoutSeconds)
        p.shutdown()
    }

    val spans = exporter.spans.toList()
    val results = exporter.results.toList()
    val report = buildJsonObject {
        put("koog_version", KOOG_VERSION)
        put("service_name", o.serviceName)
        put("agent_id", o.agentId)
        put("verbose", o.verbose)
        put("endpoint", o.endpoint)
        put("answer", answer)
        put("error", error?.toString())
        put("elapsed_ms", (System.nanoTime() - started) / 1_000_000)
        putJsonArray("trace_ids") { spans.map { it.traceId }.distinct().forEach { add(JsonPrimitive(it)) } }
        put("span_count", spans.size)
        putJsonArray("spans") {
            spans.forEach { s ->
                add(buildJsonObject {
                    put("name", s.name)
                    put("trace_id", s.traceId)
                    put("span_id", s.spanId)
                    put("parent_span_id", s.parentSpanId.takeIf { s.parentSpanContext.isValid })
                })
            }
        }
        put("export_results", JsonArray(results.map { JsonPrimitive(it) }))
    }
    println(Json.encodeToString(kotlinx.serialization.json.JsonObject.serializer(), report))
    System.out.flush()
    val exitCode = when {
        error != null -> 1
        results.isEmpty() || results.any { it != "SUCCESS" } -> 2
        else -> 0
    }
    // OkHttp's and Koog's worker threads may linger; the work is done.
    exitProcess(exitCode)
}
