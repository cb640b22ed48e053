# -DPROXY_SANITIZE=address,undefined or -DPROXY_SANITIZE=thread applies to every target, protobuf
# code included, so reports cover the whole binary we ship.
if(PROXY_SANITIZE)
  if(PROXY_SANITIZE MATCHES "thread" AND PROXY_SANITIZE MATCHES "address")
    message(FATAL_ERROR "thread and address sanitizers cannot be combined")
  endif()
  add_compile_options(-fsanitize=${PROXY_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${PROXY_SANITIZE})
  add_compile_definitions(PROXY_SANITIZED=1)
  if(PROXY_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 warns (-Wtsan) that TSan does not model std::atomic_thread_fence, which Asio uses;
    # with -Werror that stops every Asio file. Unmodelled fences can only add false reports.
    add_compile_options(-Wno-tsan)
  endif()
  if(PROXY_SANITIZE MATCHES "undefined" AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang 14's -fsanitize=function cannot compile C++20 coroutines ("Cannot represent a
    # difference across sections"); the other UBSan checks stay on.
    add_compile_options(-fno-sanitize=function)
  endif()
endif()

if(PROXY_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "PROXY_FUZZ needs clang (CXX=clang++)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
