// Wiring: configuration, logging, pipeline stages started and stopped in a known order, signals.
#pragma once

namespace proxy::app {

// The whole program: returns the process exit code.
int run_main(int argc, char** argv);

}  // namespace proxy::app
