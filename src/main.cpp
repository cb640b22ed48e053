#include <iostream>
#include <string_view>

#include "app/app.hpp"
#include "app/explain.hpp"

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "explain") {
    return proxy::app::explain_main({argv + 2, argv + argc}, proxy::config::process_environment(),
                                    std::cin, std::cout, std::cerr);
  }
  return proxy::app::run_main(argc, argv);
}
