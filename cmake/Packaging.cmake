# `cpack -G DEB` in a build directory (or `cpack --preset deb`): otlp-mlflow-proxy_<version>_amd64.deb
# with the binary in /usr/bin, the unit in /usr/lib/systemd/system, the service configuration as
# a conffile and the maintainer scripts of deploy/debian/ (the system user, the service). The
# runtime dependencies are what dpkg-shlibdeps finds the binary linked against.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME otlp-mlflow-proxy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OTLP trace proxy in front of MLflow")
set(CPACK_PACKAGE_DESCRIPTION "A daemon that accepts OpenTelemetry traces (OTLP over HTTP and gRPC) \
from AI agents, masks prompts and secrets per route, queues them in a durable spool and forwards \
them to an MLflow tracking server's experiments.")
# Installed with DESTDIR and the prefix /usr, so that /etc stays /etc and the unit's paths are
# written for /usr (CPACK_INSTALL_PREFIX is the prefix in that mode).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# adduser: postinst creates the system user with it; procps: the unit's ExecReload=/bin/kill
# (not in a minimal Debian, where systemd-analyze verify then fails the unit).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "otlp-mlflow-proxy developers")

set(_debian ${PROJECT_BINARY_DIR}/debian)
foreach(_script IN ITEMS postinst prerm postrm)
  configure_file(${PROJECT_SOURCE_DIR}/deploy/debian/${_script} ${_debian}/${_script} @ONLY)
endforeach()
file(WRITE ${_debian}/conffiles "${PROXY_CONFIG_DIR}/config.yaml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_debian}/conffiles ${_debian}/postinst ${_debian}/prerm ${_debian}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
