#pragma once

#include "config/config.hpp"

namespace proxy::app {

// Logs go to stderr (journald and docker collect it), as text or one JSON object per line.
// Throws config::ConfigError for an unknown level.
void setup_logging(const config::LogConfig& log);

}  // namespace proxy::app
