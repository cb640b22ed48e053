# cmake --install: the binary (src/CMakeLists.txt), the systemd unit, the service configuration
# and the documentation, under the prefix given at install time (/usr/local by default).
include(GNUInstallDirs)
set(PROXY_CONFIG_DIR "/etc/otlp-mlflow-proxy" CACHE PATH "Where the service configuration goes")
# Relative: under the install prefix. systemd reads units from /usr/local/lib/systemd/system
# (installed by the administrator) as well as from /usr/lib/systemd/system (by packages).
set(PROXY_UNIT_INSTALL_DIR "lib/systemd/system" CACHE PATH "Where the systemd unit goes")
configure_file(${PROJECT_SOURCE_DIR}/cmake/InstallService.cmake.in
               ${PROJECT_BINARY_DIR}/InstallService.cmake @ONLY)
install(SCRIPT ${PROJECT_BINARY_DIR}/InstallService.cmake)
install(FILES README.md config/otlp-mlflow-proxy.yaml
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/otlp-mlflow-proxy)
