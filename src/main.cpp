#include "app/app.hpp"

int main(int argc, char** argv) { return proxy::app::run_main(argc, argv); }
